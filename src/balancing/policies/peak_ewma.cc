// peak_ewma: power of two choices on cost = peak-sensitive latency average × (calls in flight
// + 1), per unit of weight (linkerd2-proxy's and Finagle's balancer). The average lives in
// EndpointStats; this picker only compares.
#include "balancing/picker.h"

namespace podlb::balancing {
namespace {

// Two candidates whose latency estimates (each at least kLatencyFloorNanos) are within this
// factor of each other count as equally fast, and the one with fewer calls in flight wins (ties
// to the cursor's pick: an even rotation at low load). Healthy pods of one Service differ by
// noise (one GC pause makes a peak); comparing raw costs, the pod with the luckiest last sample
// took most calls at low load. Only between clearly different latencies does the full cost
// (latency × (calls in flight + 1)) decide: a slow pod loses to a healthy peer until that peer
// is so loaded that waiting behind its queue would take longer (then it takes the overflow).
// Keeping the tolerance out of the cost comparison matters under load: a healthy pod with two
// calls queued must still beat an idle pod that is 5× slower.
constexpr double kSameLatencyFactor = 2.0;

class PeakEwmaPicker final : public Picker {
 public:
  explicit PeakEwmaPicker(std::span<const Candidate> candidates, uint64_t start)
      : candidates_(candidates), next_(start) {}

  uint32_t Pick(const PickArgs& args) const override {
    const size_t n = candidates_.size();
    if (n == 1) return candidates_[0].index;
    size_t a, b;
    p2c::Choose(n, next_.fetch_add(1, std::memory_order_relaxed), args.random, &a, &b);
    const Candidate* first = &candidates_[a];
    const Candidate* second = &candidates_[b];
    const double latency_first = Latency(*first, args.now_nanos);
    const double latency_second = Latency(*second, args.now_nanos);
    // Per unit of weight, without division.
    const double load_first = static_cast<double>(first->stats->in_flight() + 1) * second->weight;
    const double load_second = static_cast<double>(second->stats->in_flight() + 1) * first->weight;
    const bool same_latency = latency_first < latency_second * kSameLatencyFactor &&
                              latency_second < latency_first * kSameLatencyFactor;
    const bool second_better = same_latency
                                   ? load_second < load_first
                                   : latency_second * load_second < latency_first * load_first;
    if (second_better) std::swap(first, second);
    return p2c::Settle(candidates_, args, a, *first, *second);
  }

 private:
  static double Latency(const Candidate& c, int64_t now_nanos) {
    const double rtt = c.stats->RttEstimate(now_nanos);
    return rtt < kLatencyFloorNanos ? kLatencyFloorNanos : rtt;
  }

  std::span<const Candidate> candidates_;
  mutable std::atomic<uint64_t> next_;
};

class PeakEwmaFactory final : public PolicyFactory {
 public:
  PolicyKind kind() const override { return PolicyKind::kPeakEwma; }
  std::unique_ptr<Picker> Build(std::span<const Candidate> candidates,
                                const ServicePolicy&) const override {
    return std::make_unique<PeakEwmaPicker>(candidates, StartingCursor(candidates));
  }
};

}  // namespace

void RegisterPeakEwma(PolicyRegistry& registry) {
  registry.Register(std::make_unique<PeakEwmaFactory>());
}

}  // namespace podlb::balancing
