// RegistryWaiter: subscribes to one key of a Registry and lets a test wait for a snapshot that
// satisfies a predicate, on the publication event itself (no polling). Test thread only.
#pragma once

#include <chrono>
#include <functional>

#include "absl/synchronization/mutex.h"
#include "core/registry.h"
#include "gtest/gtest.h"

namespace podlb::testing {

class RegistryWaiter {
 public:
  RegistryWaiter(Registry& registry, const ServiceKey& key) {
    subscription_ = registry.Subscribe(key, [this](const ServiceKey&, const EndpointSetConstSharedPtr& set) {
      absl::MutexLock lock(&mu_);
      latest_ = set;
      ++publications_;
    });
  }

  [[nodiscard]] ::testing::AssertionResult WaitFor(
      const std::function<bool(const EndpointSet&)>& predicate, std::chrono::milliseconds timeout,
      const std::string& what) {
    absl::MutexLock lock(&mu_);
    auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return latest_ && predicate(*latest_); };
    if (mu_.AwaitWithTimeout(absl::Condition(&holds), absl::FromChrono(timeout)))
      return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << "timed out waiting for " << what << "; latest set has "
           << (latest_ ? latest_->endpoints().size() : 0) << " endpoints";
  }

  EndpointSetConstSharedPtr Latest() {
    absl::MutexLock lock(&mu_);
    return latest_;
  }
  int Publications() {
    absl::MutexLock lock(&mu_);
    return publications_;
  }

 private:
  absl::Mutex mu_;
  EndpointSetConstSharedPtr latest_ ABSL_GUARDED_BY(mu_);
  int publications_ ABSL_GUARDED_BY(mu_) = 0;
  std::unique_ptr<Subscription> subscription_;
};

// Sorted addresses of the eligible endpoints, for readable assertions.
inline std::vector<std::string> EligibleAddresses(const EndpointSet& set) {
  std::vector<std::string> out;
  for (const auto& e : set.endpoints())
    if (e.Health() == EndpointHealth::kEligible) out.push_back(e.address);
  return out;
}

}  // namespace podlb::testing
