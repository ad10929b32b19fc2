// least_request: power of two choices on calls in flight per unit of weight (Envoy's
// LEAST_REQUEST with choice_count 2). Blind to a slow pod at low concurrency, where every pod
// has no call in flight most of the time: that is what peak_ewma adds.
#include "balancing/picker.h"

namespace podlb::balancing {
namespace {

class LeastRequestPicker final : public Picker {
 public:
  explicit LeastRequestPicker(std::span<const Candidate> candidates, uint64_t start)
      : candidates_(candidates), next_(start) {}

  uint32_t Pick(const PickArgs& args) const override {
    const size_t n = candidates_.size();
    if (n == 1) return candidates_[0].index;
    size_t a, b;
    p2c::Choose(n, next_.fetch_add(1, std::memory_order_relaxed), args.random, &a, &b);
    const Candidate* first = &candidates_[a];
    const Candidate* second = &candidates_[b];
    // in_flight(b)/w(b) < in_flight(a)/w(a), without division. Ties go to the cursor's pick.
    if (second->stats->in_flight() * first->weight < first->stats->in_flight() * second->weight)
      std::swap(first, second);
    return p2c::Settle(candidates_, args, a, *first, *second);
  }

 private:
  std::span<const Candidate> candidates_;
  mutable std::atomic<uint64_t> next_;
};

class LeastRequestFactory final : public PolicyFactory {
 public:
  PolicyKind kind() const override { return PolicyKind::kLeastRequest; }
  std::unique_ptr<Picker> Build(std::span<const Candidate> candidates,
                                const ServicePolicy&) const override {
    return std::make_unique<LeastRequestPicker>(candidates, StartingCursor(candidates));
  }
};

}  // namespace

void RegisterLeastRequest(PolicyRegistry& registry) {
  registry.Register(std::make_unique<LeastRequestFactory>());
}

}  // namespace podlb::balancing
