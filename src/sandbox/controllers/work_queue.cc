#include "sandbox/controllers/work_queue.h"

#include "absl/time/time.h"

namespace podlb::sandbox {

void WorkQueue::AddAt(const std::string& key, Clock::time_point when) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = due_.emplace(key, when);
  if (!inserted && when < it->second) it->second = when;
  ++generation_;
}

std::optional<std::string> WorkQueue::Get() {
  absl::MutexLock lock(&mu_);
  while (!shut_down_) {
    auto earliest = due_.end();
    for (auto it = due_.begin(); it != due_.end(); ++it) {
      if (earliest == due_.end() || it->second < earliest->second) earliest = it;
    }
    Clock::time_point now = Clock::now();
    if (earliest != due_.end() && earliest->second <= now) {
      std::string key = earliest->first;
      due_.erase(earliest);
      return key;
    }
    uint64_t seen = generation_;
    auto changed = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return shut_down_ || generation_ != seen;
    };
    if (earliest == due_.end()) {
      mu_.Await(absl::Condition(&changed));
    } else {
      mu_.AwaitWithTimeout(absl::Condition(&changed), absl::FromChrono(earliest->second - now));
    }
  }
  return std::nullopt;
}

void WorkQueue::ShutDown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
}

}  // namespace podlb::sandbox
