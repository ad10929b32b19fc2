// PodRuntime: what the workload controllers (PodLifecycle) ask a "kubelet" to do with a pod's
// containers: say whether it can run them, start, probe readiness, begin termination, stop, and
// apply the pod's fault annotations (PodFault). GrpcPodRuntime runs real BackendPods;
// NullPodRuntime runs nothing (pods are instantly ready), for controller tests with many pods;
// RoutingPodRuntime (routing_pod_runtime.h) picks one of them by the pod's image.
// Thread-safe: the controller thread starts and probes, helper threads stop.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "sandbox/pods/backend_pod.h"
#include "sandbox/pods/pod_fault.h"

namespace podlb::sandbox {

struct PodLaunch {
  std::string name;
  std::string ns;
  std::string ip;
  std::string node;  // spec.nodeName
  uint16_t port = 0;
  PodFault fault;  // from the pod's podlb.io/fault-* annotations at creation
  // The Pod object as stored at creation (metadata, spec, status.podIP).
  nlohmann::json pod;
  // spec.terminationGracePeriodSeconds (the API server's default is 30 s).
  std::chrono::milliseconds termination_grace{30000};
};

// How a pod ended for good: every container exited and restartPolicy lets none run again
// (Never; OnFailure after exit 0). The pod's phase says the same.
enum class PodOutcome { kSucceeded, kFailed };

class PodRuntime {
 public:
  virtual ~PodRuntime() = default;
  virtual absl::Status StartPod(const PodLaunch& launch) = 0;
  // The readiness probe: OK once the pod answers its health check with SERVING.
  virtual absl::Status ProbeReadiness(const std::string& name) = 0;
  virtual void BeginTermination(const std::string& name) = 0;
  // The pod's fault annotations changed; takes effect at once. Unknown pods are ignored.
  virtual void SetFault(const std::string& name, const PodFault& fault) = 0;
  // GOAWAY and wait for in-flight calls up to `deadline`; blocks, so callers use a helper thread.
  virtual void StopPod(const std::string& name, std::chrono::milliseconds deadline) = 0;
  // OK if this runtime can run the pod's containers; otherwise why not (the pod then stays
  // Pending with a Warning event carrying this message, and is not retried).
  virtual absl::Status CanRun(const nlohmann::json& /*pod*/) const { return absl::OkStatus(); }
  // True if the pod's own process drains on BeginTermination (SIGTERM) and StopPod waits for it
  // up to launch.termination_grace; false (backend pods): the sandbox keeps the pod serving for
  // its own grace period, then calls StopPod.
  virtual bool DrainsItself(const std::string& /*name*/) const { return false; }
  // Set once the pod has finished (restartPolicy Never or OnFailure); nullopt while it runs or
  // restarts, and always for runtimes whose pods run until stopped (the test backends).
  virtual std::optional<PodOutcome> Outcome(const std::string& /*name*/) const {
    return std::nullopt;
  }
};

class NullPodRuntime : public PodRuntime {
 public:
  absl::Status StartPod(const PodLaunch&) override { return absl::OkStatus(); }
  absl::Status ProbeReadiness(const std::string&) override { return absl::OkStatus(); }
  void BeginTermination(const std::string&) override {}
  void SetFault(const std::string&, const PodFault&) override {}
  void StopPod(const std::string&, std::chrono::milliseconds) override {}
};

struct GrpcPodRuntimeOptions {
  std::optional<std::chrono::milliseconds> max_connection_age;
  std::chrono::milliseconds probe_timeout{1000};
};

class GrpcPodRuntime : public PodRuntime {
 public:
  explicit GrpcPodRuntime(GrpcPodRuntimeOptions options = {}) : options_(options) {}
  ~GrpcPodRuntime() override;  // stops every pod still running

  absl::Status StartPod(const PodLaunch& launch) override;
  absl::Status ProbeReadiness(const std::string& name) override;
  void BeginTermination(const std::string& name) override;
  void SetFault(const std::string& name, const PodFault& fault) override;
  void StopPod(const std::string& name, std::chrono::milliseconds deadline) override;

  // Stops all pods in parallel (sandbox shutdown).
  void StopAll(std::chrono::milliseconds deadline);
  std::shared_ptr<BackendPod> Find(const std::string& name) const;
  std::vector<std::shared_ptr<BackendPod>> Pods() const;

 private:
  const GrpcPodRuntimeOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::shared_ptr<BackendPod>> pods_ ABSL_GUARDED_BY(mu_);
};

// Hands out distinct loopback addresses 127.a.b.c (c in 2..254) starting at `first`, so every
// pod looks like its own host. Addresses are reused only after the whole range went round, so a
// client still holding an old pod's address does not silently reach a new pod.
class PodIpAllocator {
 public:
  explicit PodIpAllocator(const std::string& first = "127.0.0.2");
  std::string Allocate();
  void Release(const std::string& ip);

 private:
  absl::Mutex mu_;
  uint32_t first_;
  uint32_t next_ ABSL_GUARDED_BY(mu_);
  std::map<uint32_t, bool> in_use_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb::sandbox
