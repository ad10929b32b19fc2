// StoreWatch: list + watch of one resource type in the ResourceStore on its own thread, as a
// client-go informer does against the API server: an ADDED event for every existing object
// first, then the watch events in order; relists when the watch expired (Gone).
// Start/Stop from the owning controller; the handler runs on the StoreWatch's thread.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <thread>
#include <utility>

#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

class StoreWatch {
 public:
  using Handler = std::function<void(const WatchEvent&)>;

  StoreWatch(ResourceStore& store, std::string resource, Handler handler);
  ~StoreWatch();  // stops

  // Lists synchronously (so the caller's first reconcile sees the initial objects), then watches.
  void Start();
  void Stop();

 private:
  void ListAll();
  void Run();

  ResourceStore& store_;
  const std::string resource_;
  Handler handler_;
  std::atomic<bool> stop_{false};
  uint64_t version_ = 0;  // watch thread only (after Start)
  std::thread thread_;
};

// Helpers shared by the controllers.
std::string ObjectKey(const nlohmann::json& object);  // "namespace/name"
// "namespace/name" → {namespace, name}.
std::pair<std::string, std::string> SplitObjectKey(const std::string& key);
uint64_t ObjectVersion(const nlohmann::json& object);  // metadata.resourceVersion as a number
std::string NowRfc3339();
// Sets condition `type` of an object's status to True/False, moving lastTransitionTime only when
// the value changes (a Pod's Ready, ContainersReady, ...), with `reason` when one is given
// (PodCompleted on a finished pod's Ready).
void SetCondition(nlohmann::json& status, const std::string& type, bool value,
                  const std::string& reason = "");

// Get, apply `mutate`, Update; retries when another writer got there first (409 Conflict).
// `mutate` returns false when nothing needs writing.
absl::Status MutateObject(ResourceStore& store, const std::string& resource, const std::string& ns,
                          const std::string& name,
                          const std::function<bool(nlohmann::json&)>& mutate);

}  // namespace podlb::sandbox
