// EndpointStats: what the balancer knows about one endpoint right now — calls in flight, a
// peak-sensitive moving average of its latency, its recent failures and whether it is ejected.
// One per endpoint per Balancer, shared by every thread that calls the endpoint (all proxy
// workers, all threads of a library channel); updated on the data path with relaxed atomics
// only. Kept across picker rebuilds while the endpoint stays, dropped with it.
#pragma once

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace podlb::balancing {

// Peak-EWMA constants (linkerd2-proxy's and Finagle's shape).
// The estimate jumps to any sample above it at once (the "peak"), and otherwise decays toward
// the samples with time constant kEwmaDecayNanos: the weight of the old estimate after `dt` is
// exp(-dt / decay). The estimate read for a pick also decays toward zero while no answer
// arrives, so an avoided pod is probed again now and then.
// 3 s, not linkerd2-proxy's and Finagle's 10 s: one scheduling hiccup of 30 ms on a healthy pod
// (common on a busy 2-core node) made it look slow for 11 s at 10 s and skewed a 3-pod Service
// to max/min 1.25 in the demo; at 3 s it passes in about 3 s. A pod that stays bad loses
// nothing by it: a +25 ms pod is probed by one call every ~3 s, a failing one (1 s penalty) every
// ~14 s, and each probe renews the peak.
inline constexpr double kEwmaDecayNanos = 3e9;
// A failed call counts as a sample of at least this latency, so a pod that fails fast does not
// look fast (Finagle and linkerd2-proxy penalize failures for the same reason). Large enough to
// lose to any healthy pod for tens of seconds at the 10 s decay.
inline constexpr double kFailurePenaltyNanos = 1e9;
// Latencies below this count as equal in the cost. On loopback and in one zone, calls take tens
// to hundreds of microseconds, and one call's scheduling hiccup on a busy node is several
// milliseconds: with a 2 ms floor such a peak left one pod of three with a quarter of the calls
// of the others for seconds (the library's sandbox test, under a parallel test run). Below 5 ms
// calls in flight decide (as least_request does); a pod slower than 2 × 5 ms loses.
inline constexpr double kLatencyFloorNanos = 5e6;

// Whether a call's outcome counts against the endpoint (ejection and the latency average):
// transport failures and UNAVAILABLE, INTERNAL, UNKNOWN, DEADLINE_EXCEEDED. Application errors
// (INVALID_ARGUMENT, NOT_FOUND, ...) are the caller's business, not the pod's health.
constexpr bool IsEndpointFailure(int grpc_status) {
  return grpc_status == 14 /*UNAVAILABLE*/ || grpc_status == 13 /*INTERNAL*/ ||
         grpc_status == 2 /*UNKNOWN*/ || grpc_status == 4 /*DEADLINE_EXCEEDED*/;
}

class alignas(64) EndpointStats {
 public:
  explicit EndpointStats(double initial_rtt_nanos = 0, int64_t now_nanos = 0) {
    StoreRtt(initial_rtt_nanos, now_nanos);
  }
  EndpointStats(const EndpointStats&) = delete;
  EndpointStats& operator=(const EndpointStats&) = delete;

  // --- data path ---
  void CallStarted() { in_flight_.fetch_add(1, std::memory_order_relaxed); }
  // Records a finished call. Returns the consecutive failure count after this call (0 on
  // success), for the outlier rules.
  uint32_t CallFinished(bool failure, int64_t latency_nanos, int64_t now_nanos);
  // For a call that ended without an outcome worth recording (cancelled by the client).
  void CallAbandoned() { in_flight_.fetch_sub(1, std::memory_order_relaxed); }

  int64_t in_flight() const { return in_flight_.load(std::memory_order_relaxed); }
  // The latency estimate as of `now` (decayed toward zero since the last sample).
  double RttEstimate(int64_t now_nanos) const;
  bool Ejected(int64_t now_nanos) const {
    return ejected_until_.load(std::memory_order_relaxed) > now_nanos;
  }

  // --- outlier bookkeeping (cold path: the Balancer, under its lock) ---
  // Calls and failures in the current failure-percentage window; a window older than
  // `window_nanos` is restarted by the next call.
  void SetWindow(int64_t window_nanos) { window_nanos_.store(window_nanos, std::memory_order_relaxed); }
  uint32_t window_calls() const { return static_cast<uint32_t>(window_.load(std::memory_order_relaxed)); }
  uint32_t window_failures() const {
    return static_cast<uint32_t>(window_.load(std::memory_order_relaxed) >> 32);
  }
  int64_t ejected_until() const { return ejected_until_.load(std::memory_order_relaxed); }
  void SetEjectedUntil(int64_t until) { ejected_until_.store(until, std::memory_order_relaxed); }
  // Repeats that lengthen the next ejection (reset after a long healthy spell).
  uint32_t times_ejected() const { return times_ejected_.load(std::memory_order_relaxed); }
  void SetTimesEjected(uint32_t n) {
    times_ejected_.store(n, std::memory_order_relaxed);
    ejections_total_.fetch_add(1, std::memory_order_relaxed);
  }
  uint64_t ejections_total() const { return ejections_total_.load(std::memory_order_relaxed); }
  void ResetFailureCounts() {
    consecutive_failures_.store(0, std::memory_order_relaxed);
    window_.store(0, std::memory_order_relaxed);
  }

  // Totals, for metrics.
  uint64_t calls_total() const { return calls_total_.load(std::memory_order_relaxed); }
  uint64_t failures_total() const { return failures_total_.load(std::memory_order_relaxed); }

 private:
  void StoreRtt(double rtt, int64_t now) {
    uint64_t bits;
    std::memcpy(&bits, &rtt, sizeof bits);
    rtt_bits_.store(bits, std::memory_order_relaxed);
    rtt_stamp_.store(now, std::memory_order_relaxed);
  }
  double LoadRtt() const {
    uint64_t bits = rtt_bits_.load(std::memory_order_relaxed);
    double rtt;
    std::memcpy(&rtt, &bits, sizeof rtt);
    return rtt;
  }

  std::atomic<int64_t> in_flight_{0};
  std::atomic<uint64_t> rtt_bits_{0};  // double, nanoseconds
  std::atomic<int64_t> rtt_stamp_{0};  // when rtt_bits_ was last set
  std::atomic<uint32_t> consecutive_failures_{0};
  std::atomic<uint64_t> window_{0};  // failures << 32 | calls
  std::atomic<int64_t> window_start_{0};
  std::atomic<int64_t> window_nanos_{10'000'000'000};
  std::atomic<int64_t> ejected_until_{0};
  std::atomic<uint32_t> times_ejected_{0};
  std::atomic<uint64_t> ejections_total_{0};
  std::atomic<uint64_t> calls_total_{0};
  std::atomic<uint64_t> failures_total_{0};
};

inline double EndpointStats::RttEstimate(int64_t now_nanos) const {
  const double rtt = LoadRtt();
  const int64_t elapsed = now_nanos - rtt_stamp_.load(std::memory_order_relaxed);
  if (elapsed <= 0 || rtt == 0) return rtt;
  return rtt * std::exp(-static_cast<double>(elapsed) / kEwmaDecayNanos);
}

inline uint32_t EndpointStats::CallFinished(bool failure, int64_t latency_nanos,
                                           int64_t now_nanos) {
  in_flight_.fetch_sub(1, std::memory_order_relaxed);
  calls_total_.fetch_add(1, std::memory_order_relaxed);
  // Peak EWMA. Racing updates may lose one sample; the estimate stays a plausible value.
  double sample = static_cast<double>(latency_nanos < 0 ? 0 : latency_nanos);
  if (failure && sample < kFailurePenaltyNanos) sample = kFailurePenaltyNanos;
  const double current = LoadRtt();
  const int64_t elapsed = now_nanos - rtt_stamp_.load(std::memory_order_relaxed);
  double next;
  if (sample > current) {
    next = sample;
  } else {
    const double keep = elapsed > 0 ? std::exp(-static_cast<double>(elapsed) / kEwmaDecayNanos) : 1;
    next = current * keep + sample * (1 - keep);
  }
  StoreRtt(next, now_nanos);

  // Failure window (for the failure-percentage rule).
  const int64_t start = window_start_.load(std::memory_order_relaxed);
  if (now_nanos - start > window_nanos_.load(std::memory_order_relaxed)) {
    int64_t expected = start;
    if (window_start_.compare_exchange_strong(expected, now_nanos, std::memory_order_relaxed))
      window_.store(0, std::memory_order_relaxed);
  }
  window_.fetch_add(failure ? (uint64_t{1} << 32) + 1 : 1, std::memory_order_relaxed);
  if (!failure) {
    if (consecutive_failures_.load(std::memory_order_relaxed) != 0)
      consecutive_failures_.store(0, std::memory_order_relaxed);
    return 0;
  }
  failures_total_.fetch_add(1, std::memory_order_relaxed);
  return consecutive_failures_.fetch_add(1, std::memory_order_relaxed) + 1;
}

}  // namespace podlb::balancing
