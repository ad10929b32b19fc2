// NamespaceController: kube-controller-manager's namespace controller. A namespace being deleted
// (deletionTimestamp set by the API server, phase Terminating) has every namespaced object in it
// deleted, then the namespace itself, so `kubectl delete namespace` and `kubectl delete -f`
// behave as on a real cluster: the namespace stays visible, Terminating, while its content goes.
// Start/Stop from one control thread; the work happens on the controller's own thread.
#pragma once

#include <memory>
#include <thread>

#include "absl/status/status.h"
#include "sandbox/apiserver/resource_store.h"
#include "sandbox/controllers/store_watch.h"
#include "sandbox/controllers/work_queue.h"

namespace podlb::sandbox {

class NamespaceController {
 public:
  explicit NamespaceController(ResourceStore& store) : store_(store) {}
  ~NamespaceController();  // Stop

  absl::Status Start();
  void Stop();

 private:
  void Run();
  void Finalize(const std::string& name);

  ResourceStore& store_;
  WorkQueue queue_;
  std::unique_ptr<StoreWatch> watch_;
  std::thread thread_;
};

}  // namespace podlb::sandbox
