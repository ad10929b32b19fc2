// WorkQueue: the controllers' queue of object keys to reconcile, as client-go's workqueue:
// a key queued twice before it is taken is reconciled once; AddAfter schedules a key for later
// (timers for probes and grace periods). Any thread may Add; one worker thread calls Get.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"

namespace podlb::sandbox {

class WorkQueue {
 public:
  using Clock = std::chrono::steady_clock;

  void Add(const std::string& key) { AddAt(key, Clock::now()); }
  void AddAfter(const std::string& key, Clock::duration delay) { AddAt(key, Clock::now() + delay); }
  // Keeps the earlier due time if the key is already queued.
  void AddAt(const std::string& key, Clock::time_point when);
  // Blocks until a key is due; nullopt once ShutDown was called.
  std::optional<std::string> Get();
  void ShutDown();

 private:
  absl::Mutex mu_;
  std::map<std::string, Clock::time_point> due_ ABSL_GUARDED_BY(mu_);
  uint64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace podlb::sandbox
