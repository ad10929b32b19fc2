// least_request: power of two choices on calls in flight per unit of weight (Envoy's
// LEAST_REQUEST with choice_count 2). Blind to a slow pod at low concurrency, where every pod
// has no call in flight most of the time: that is what peak_ewma adds.
#include "balancing/picker.h"

namespace podlb::balancing {
namespace {

// in_flight(second)/w(second) < in_flight(first)/w(first), without division. Ties go to the
// cursor's pick.
struct FewerInFlight {
  bool operator()(const Candidate& first, const Candidate& second, int64_t) const {
    return second.stats->in_flight() * first.weight < first.stats->in_flight() * second.weight;
  }
};

class LeastRequestFactory final : public PolicyFactory {
 public:
  PolicyKind kind() const override { return PolicyKind::kLeastRequest; }
  std::unique_ptr<Picker> Build(std::span<const Candidate> candidates,
                                const ServicePolicy&) const override {
    return std::make_unique<PowerOfTwoChoicesPicker<FewerInFlight>>(candidates, FewerInFlight{});
  }
};

}  // namespace

void RegisterLeastRequest(PolicyRegistry& registry) {
  registry.Register(std::make_unique<LeastRequestFactory>());
}

}  // namespace podlb::balancing
