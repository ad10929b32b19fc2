// TcpForwarder: an L4 forwarder that does what kube-proxy does for a ClusterIP. It listens on one
// address and sends each accepted *connection* to one backend picked by `pick` at accept time,
// given the client's source IP (internalTrafficPolicy: Local needs the client's node); bytes then
// flow both ways until either side closes. A gRPC client's one HTTP/2 connection therefore stays
// pinned to one pod. Used by the demo's ClusterIP baseline and the sandbox's ServiceProxy.
// Start/Stop from one control thread; the forwarder runs an accept thread and one thread per
// connection, and `pick` runs on the accept thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace podlb::net {

class TcpForwarder {
 public:
  // Returns "ip:port" of the backend for a new connection from `peer_ip` (the accepted
  // connection's source address), or nullopt to refuse it (the connection is closed at once,
  // as kube-proxy rejects a Service without endpoints).
  using Picker = std::function<std::optional<std::string>(const std::string& peer_ip)>;

  // listen_port 0: a free port, chosen at Start.
  TcpForwarder(std::string listen_ip, uint16_t listen_port, Picker pick);
  TcpForwarder(std::string listen_ip, Picker pick)
      : TcpForwarder(std::move(listen_ip), 0, std::move(pick)) {}
  ~TcpForwarder();  // Stop
  TcpForwarder(const TcpForwarder&) = delete;
  TcpForwarder& operator=(const TcpForwarder&) = delete;

  // Binds listen_ip:listen_port and starts accepting. Unavailable, naming the address and the
  // system's reason, when it cannot bind (the port is taken, the address is not local).
  absl::Status Start();
  // Closes the listener and every forwarded connection, joins the threads.
  void Stop();

  std::string address() const;  // "ip:port", the port bound once started
  uint16_t port() const { return port_; }
  uint64_t connections_forwarded() const { return forwarded_.load(); }
  uint64_t connections_refused() const { return refused_.load(); }

 private:
  struct Connection {
    std::thread thread;
    bool done = false;  // set by the thread as it ends, so the acceptor can join it
  };

  void AcceptLoop();
  void Pump(int client_fd, int backend_fd);
  // Joins the threads of the connections that ended (a long-lived forwarder serves many).
  void ReapFinished();

  const std::string listen_ip_;
  const Picker pick_;
  int listen_fd_ = -1;
  int wake_pipe_[2] = {-1, -1};  // written by Stop to wake the poll loops
  uint16_t port_ = 0;
  std::atomic<uint64_t> forwarded_{0};
  std::atomic<uint64_t> refused_{0};
  std::thread acceptor_;
  absl::Mutex mu_;
  std::list<Connection> connections_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

// Parses "ip:port" (IPv4) into a connected TCP socket; -1 on failure. A non-empty `source_ip`
// is bound as the connection's source address first (tests play a client on a given pod IP).
int ConnectTcp(const std::string& host_port, const std::string& source_ip = "");

}  // namespace podlb::net
