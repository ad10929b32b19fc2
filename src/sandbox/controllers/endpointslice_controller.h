// EndpointSliceController: kube-controller-manager's endpointslice and endpoints controllers.
// For every Service with a selector it publishes the selected pods as discovery.k8s.io/v1
// EndpointSlices (at most max_endpoints_per_slice each, stable names, updated in place, unchanged
// slices left alone) and keeps the core/v1 Endpoints object consistent.
// Start/Stop from one control thread; reconciling happens on the controller's own thread.
#pragma once

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "sandbox/apiserver/resource_store.h"
#include "sandbox/controllers/nodes.h"
#include "sandbox/controllers/store_watch.h"
#include "sandbox/controllers/work_queue.h"

namespace podlb::sandbox {

inline constexpr char kServiceNameLabel[] = "kubernetes.io/service-name";
inline constexpr char kManagedByLabel[] = "endpointslice.kubernetes.io/managed-by";
inline constexpr char kManagedByController[] = "endpointslice-controller.k8s.io";

struct EndpointSliceControllerOptions {
  size_t max_endpoints_per_slice =
      100;  // the real controller's default (--max-endpoints-per-slice)
  std::vector<NodeInfo> nodes = DefaultNodes();
};

class EndpointSliceController {
 public:
  EndpointSliceController(ResourceStore& store, EndpointSliceControllerOptions options = {});
  ~EndpointSliceController();  // Stop

  absl::Status Start();
  void Stop();

  // One reconcile of service `ns/name`, synchronously (the controller thread calls this too).
  absl::Status ReconcileService(const std::string& ns, const std::string& name);

 private:
  // One selected pod as an endpoint, with the service ports resolved against it.
  struct PodEndpoint {
    std::string pod;
    std::string ip;
    bool ready = false;
    bool terminating = false;
    nlohmann::json slice_endpoint;  // the EndpointSlice endpoint entry
    nlohmann::json ports;           // resolved ports, EndpointSlice form
  };

  void Run();
  std::vector<PodEndpoint> SelectedEndpoints(const std::string& ns, const nlohmann::json& service,
                                             const std::vector<nlohmann::json>& pods) const;
  absl::Status ReconcileSlices(const std::string& ns, const std::string& name,
                               const nlohmann::json& service,
                               const std::vector<PodEndpoint>& endpoints);
  absl::Status ReconcileEndpoints(const std::string& ns, const std::string& name,
                                  const nlohmann::json& service,
                                  const std::vector<PodEndpoint>& endpoints);
  absl::Status DeleteSlices(const std::string& ns, const std::string& name);

  ResourceStore& store_;
  const EndpointSliceControllerOptions options_;
  WorkQueue queue_;
  std::unique_ptr<StoreWatch> service_watch_;
  std::unique_ptr<StoreWatch> pod_watch_;
  std::thread thread_;
};

}  // namespace podlb::sandbox
