// TcpForwarder: the ClusterIP baseline, an L4 forwarder that does what kube-proxy does. It
// listens on one virtual address and sends each accepted *connection* to one endpoint picked by
// `pick` at accept time; bytes then flow both ways until either side closes. A gRPC client's one
// HTTP/2 connection therefore stays pinned to one pod. Start/Stop from one control thread; the
// forwarder runs an accept thread and one thread per connection.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace podlb::demo {

class TcpForwarder {
 public:
  // Returns "ip:port" of the backend for a new connection, or nullopt to refuse it.
  using Picker = std::function<std::optional<std::string>()>;

  TcpForwarder(std::string listen_ip, Picker pick);
  ~TcpForwarder();  // Stop
  TcpForwarder(const TcpForwarder&) = delete;
  TcpForwarder& operator=(const TcpForwarder&) = delete;

  // Binds listen_ip on a free port.
  absl::Status Start();
  // Closes the listener and every forwarded connection, joins the threads.
  void Stop();

  std::string address() const;  // "ip:port"
  uint64_t connections_forwarded() const { return forwarded_.load(); }

 private:
  void AcceptLoop();
  void Pump(int client_fd, int backend_fd);

  const std::string listen_ip_;
  const Picker pick_;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};  // written by Stop to wake the poll loops
  uint16_t port_ = 0;
  std::atomic<uint64_t> forwarded_{0};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::vector<std::thread> connections_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

// Parses "ip:port" (IPv4) into a connected TCP socket; -1 on failure.
int ConnectTcp(const std::string& host_port);

}  // namespace podlb::demo
