// peak_ewma: power of two choices on cost = peak-sensitive latency average × (calls in flight
// + 1), per unit of weight (linkerd2-proxy's and Finagle's balancer). The average lives in
// EndpointStats; this picker only compares.
#include "balancing/picker.h"

namespace podlb::balancing {
namespace {

// The second candidate wins only when its cost is below the first's by more than this factor.
// Healthy pods of one Service differ by noise (one GC pause makes a peak); without a margin the
// pod with the luckiest last sample takes two thirds of the calls at low load. With it, near
// equals share the cursor's even rotation, while a pod 2× slower (or with two more calls queued
// than an idle peer) loses every comparison.
constexpr double kCostTieFactor = 2.0;

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
    const double cost_first = first->stats->Cost(args.now_nanos) * second->weight;
    const double cost_second = second->stats->Cost(args.now_nanos) * first->weight;
    if (cost_second * kCostTieFactor < cost_first) std::swap(first, second);
    if (args.Acceptable(*first)) return first->index;
    if (args.Acceptable(*second)) return second->index;
    for (size_t i = 1; i < n; ++i) {
      const Candidate& c = candidates_[(a + i) % n];
      if (args.Acceptable(c)) return c.index;
    }
    return first->index;
  }

 private:
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
