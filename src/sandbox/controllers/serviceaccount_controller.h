// ServiceAccountController: kube-controller-manager's serviceaccount controller. Every active
// namespace has a ServiceAccount "default" (created with the namespace, and again if deleted), so
// a pod that names no account (a Job's, `kubectl run`'s) gets a token mounted, as on a real
// cluster. Start/Stop from one control thread; the work happens on the store watches' threads.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "sandbox/apiserver/resource_store.h"
#include "sandbox/controllers/store_watch.h"

namespace podlb::sandbox {

class ServiceAccountController {
 public:
  explicit ServiceAccountController(ResourceStore& store) : store_(store) {}
  ~ServiceAccountController();  // Stop

  absl::Status Start();
  void Stop();

 private:
  // Creates ns/default unless the namespace is gone or terminating, or the account exists.
  void Ensure(const std::string& ns);

  ResourceStore& store_;
  std::unique_ptr<StoreWatch> namespaces_;
  std::unique_ptr<StoreWatch> accounts_;
};

}  // namespace podlb::sandbox
