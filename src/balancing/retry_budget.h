// RetryBudget: how many retries a Service may spend (Linkerd's shape): at most `ratio` of the
// calls of the last ten seconds, plus `min_per_second` so a quiet Service can still retry. A
// pod failing every call then costs at most ratio × the call rate in extra load, never a retry
// storm. Any thread, atomics only.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace podlb::balancing {

class RetryBudget {
 public:
  // Linkerd's defaults: 20 % of calls, 10 retries a second, over a 10 s window.
  explicit RetryBudget(double ratio = 0.2, uint32_t min_per_second = 10)
      : ratio_(ratio), min_per_second_(min_per_second) {}

  // A call's first attempt (deposits into the budget).
  void OnCall(int64_t now_nanos) { BucketFor(now_nanos).calls.fetch_add(1, std::memory_order_relaxed); }
  // True (and the retry is charged) if the budget allows one more retry now.
  bool TryRetry(int64_t now_nanos);

  uint64_t exhausted_total() const { return exhausted_.load(std::memory_order_relaxed); }

 private:
  static constexpr int kBuckets = 10;  // one per second
  struct Bucket {
    std::atomic<int64_t> second{-1};
    std::atomic<uint32_t> calls{0};
    std::atomic<uint32_t> retries{0};
  };
  Bucket& BucketFor(int64_t now_nanos);

  const double ratio_;
  const uint32_t min_per_second_;
  std::array<Bucket, kBuckets> buckets_;
  std::atomic<uint64_t> exhausted_{0};
};

inline RetryBudget::Bucket& RetryBudget::BucketFor(int64_t now_nanos) {
  const int64_t second = now_nanos / 1'000'000'000;
  Bucket& bucket = buckets_[static_cast<size_t>(second % kBuckets)];
  int64_t seen = bucket.second.load(std::memory_order_relaxed);
  if (seen != second && bucket.second.compare_exchange_strong(seen, second,
                                                              std::memory_order_relaxed)) {
    // This bucket last counted a second ten or more seconds ago: start it afresh. (A count
    // landing between the exchange and these stores is lost; the budget is an estimate.)
    bucket.calls.store(0, std::memory_order_relaxed);
    bucket.retries.store(0, std::memory_order_relaxed);
  }
  return bucket;
}

inline bool RetryBudget::TryRetry(int64_t now_nanos) {
  Bucket& current = BucketFor(now_nanos);
  const int64_t second = now_nanos / 1'000'000'000;
  uint64_t calls = 0, retries = 0;
  for (const Bucket& b : buckets_) {
    if (second - b.second.load(std::memory_order_relaxed) >= kBuckets) continue;
    calls += b.calls.load(std::memory_order_relaxed);
    retries += b.retries.load(std::memory_order_relaxed);
  }
  const double allowed = ratio_ * static_cast<double>(calls) + min_per_second_ * double{kBuckets};
  if (static_cast<double>(retries) + 1 > allowed) {
    exhausted_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  current.retries.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace podlb::balancing
