// BackendPod: one "pod" of the sandbox, a real grpc++ server bound to its own loopback IP that
// serves grpc.testing.TestService, grpc.health.v1.Health and server reflection, with the
// Kubernetes lifecycle (started → serving → terminating → shut down with GOAWAY), and a PodFault
// (slow, failing, stuck) that affects the TestService only, never the health service.
// Start/BeginTermination/Shutdown from one control thread; SetFault and counters from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "sandbox/pods/pod_fault.h"

namespace grpc {
class Server;
}

namespace podlb::sandbox {

struct BackendPodOptions {
  std::string name;              // returned in SimpleResponse.hostname and .server_id
  std::string ip = "127.0.0.1";  // the pod's own loopback address
  uint16_t port = 0;             // 0: pick a free port (see BackendPod::port())
  // Server-side MAX_CONNECTION_AGE: connections get GOAWAY after this long (the demo uses it to
  // show how clients rebalance); unset: connections live forever, as by default in gRPC.
  std::optional<std::chrono::milliseconds> max_connection_age;
  PodFault fault;  // from the start, so a pod created faulty never answers a call without it
};

class FaultInjector;
class PodTestService;

class BackendPod {
 public:
  explicit BackendPod(BackendPodOptions options);
  ~BackendPod();  // Shutdown with a zero deadline if still running
  BackendPod(const BackendPod&) = delete;
  BackendPod& operator=(const BackendPod&) = delete;

  // Binds ip:port and starts serving; health reports SERVING from here on.
  absl::Status Start();
  // Kubernetes deleted the pod: health turns NOT_SERVING (clients that health-check drain), but
  // calls are still served until Shutdown.
  void BeginTermination();
  // Sends GOAWAY, lets in-flight calls finish until `deadline` from now, cancels the rest. Calls
  // held by a delay or stuck fault are answered UNAVAILABLE first: they would never finish.
  void Shutdown(std::chrono::milliseconds deadline);

  // Takes effect at once, also for calls the old fault holds (see FaultInjector::SetFault).
  void SetFault(const PodFault& fault);
  PodFault fault() const;

  const std::string& name() const { return options_.name; }
  const std::string& ip() const { return options_.ip; }
  uint16_t port() const { return port_; }
  std::string address() const;  // "ip:port"
  bool running() const { return running_.load(); }
  bool terminating() const;

  // TestService calls served so far, and distinct client connections (peers) seen.
  uint64_t calls_served() const;
  uint64_t connections_accepted() const;
  // TestService calls answered with the fault's injected error; calls ever held by a stuck
  // fault; calls held right now (delayed or stuck).
  uint64_t calls_failed_by_fault() const;
  uint64_t calls_held_stuck() const;
  size_t calls_held_now() const;

 private:
  class HealthServiceImpl;
  struct State;

  BackendPodOptions options_;
  std::shared_ptr<State> state_;
  std::shared_ptr<FaultInjector> faults_;
  std::unique_ptr<PodTestService> test_service_;
  std::unique_ptr<HealthServiceImpl> health_service_;
  std::unique_ptr<grpc::Server> server_;
  uint16_t port_ = 0;
  std::atomic<bool> running_{false};
};

}  // namespace podlb::sandbox
