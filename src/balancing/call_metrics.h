// CallMetrics: the golden signals of one Service as one client side sees them — calls by gRPC
// status and a latency histogram per status class — kept by the proxy (per Service, all
// workers) and by a library channel. Recorded with relaxed atomics from any thread; read by
// /metrics or a stats snapshot.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string_view>

#include "balancing/endpoint_stats.h"

namespace podlb::balancing {

// How a call ended, for the histogram's `class` label: "ok"; "failure" when the pod or the
// path to it failed (IsEndpointFailure, or no status at all); "error" for application errors.
enum class StatusClass { kOk = 0, kFailure = 1, kError = 2 };
inline constexpr std::array<std::string_view, 3> kStatusClassNames = {"ok", "failure", "error"};
constexpr StatusClass ClassOf(int grpc_status) {
  if (grpc_status == 0) return StatusClass::kOk;
  if (grpc_status < 0 || IsEndpointFailure(grpc_status)) return StatusClass::kFailure;
  return StatusClass::kError;
}

// Prometheus-style cumulative buckets, seconds: 0.5 ms .. 10 s, the span between a loopback
// call and a generous deadline.
inline constexpr std::array<double, 14> kLatencyBucketsSeconds = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

class CallMetrics {
 public:
  // `grpc_status` 0..16, or -1 when the call ended without a status (transport failure).
  void Record(int grpc_status, int64_t latency_nanos) {
    const size_t code = grpc_status >= 0 && grpc_status <= 16 ? grpc_status + 1 : 0;
    by_status_[code].fetch_add(1, std::memory_order_relaxed);
    Histogram& h = histograms_[static_cast<size_t>(ClassOf(grpc_status))];
    const double seconds = static_cast<double>(latency_nanos) / 1e9;
    size_t bucket = 0;
    while (bucket < kLatencyBucketsSeconds.size() && seconds > kLatencyBucketsSeconds[bucket])
      ++bucket;
    h.buckets[bucket].fetch_add(1, std::memory_order_relaxed);  // non-cumulative here
    h.count.fetch_add(1, std::memory_order_relaxed);
    h.sum_nanos.fetch_add(static_cast<uint64_t>(latency_nanos < 0 ? 0 : latency_nanos),
                          std::memory_order_relaxed);
  }

  // Calls that ended with `grpc_status` (-1: no status).
  uint64_t calls_with_status(int grpc_status) const {
    const size_t code = grpc_status >= 0 && grpc_status <= 16 ? grpc_status + 1 : 0;
    return by_status_[code].load(std::memory_order_relaxed);
  }

  struct HistogramView {
    std::array<uint64_t, kLatencyBucketsSeconds.size() + 1> buckets{};  // cumulative; last = +Inf
    uint64_t count = 0;
    double sum_seconds = 0;
  };
  HistogramView Latency(StatusClass status_class) const {
    const Histogram& h = histograms_[static_cast<size_t>(status_class)];
    HistogramView view;
    uint64_t running = 0;
    for (size_t i = 0; i < view.buckets.size(); ++i) {
      running += h.buckets[i].load(std::memory_order_relaxed);
      view.buckets[i] = running;
    }
    view.count = running;
    view.sum_seconds = static_cast<double>(h.sum_nanos.load(std::memory_order_relaxed)) / 1e9;
    return view;
  }

 private:
  struct Histogram {
    std::array<std::atomic<uint64_t>, kLatencyBucketsSeconds.size() + 1> buckets{};
    std::atomic<uint64_t> count{0};
    std::atomic<uint64_t> sum_nanos{0};
  };
  std::array<std::atomic<uint64_t>, 18> by_status_{};  // [0]: no status; [c+1]: status c
  std::array<Histogram, 3> histograms_;
};

}  // namespace podlb::balancing
