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

double Latency(const Candidate& c, int64_t now_nanos) {
  const double rtt = c.stats->RttEstimate(now_nanos);
  return rtt < kLatencyFloorNanos ? kLatencyFloorNanos : rtt;
}

struct LowerCost {
  bool operator()(const Candidate& first, const Candidate& second, int64_t now_nanos) const {
    const double latency_first = Latency(first, now_nanos);
    const double latency_second = Latency(second, now_nanos);
    const bool same_latency = latency_first < latency_second * kSameLatencyFactor &&
                              latency_second < latency_first * kSameLatencyFactor;
    const double in_flight_first = static_cast<double>(first.stats->in_flight());
    const double in_flight_second = static_cast<double>(second.stats->in_flight());
    if (same_latency) {
      // Fewer calls in flight per unit of weight, without division; a tie (idle pods) goes to
      // the cursor's pick, whose turns follow the weights.
      return in_flight_second * first.weight < in_flight_first * second.weight;
    }
    // Latency × (calls in flight + 1), per unit of weight, without division.
    return latency_second * (in_flight_second + 1) * first.weight <
           latency_first * (in_flight_first + 1) * second.weight;
  }
};

class PeakEwmaFactory final : public PolicyFactory {
 public:
  PolicyKind kind() const override { return PolicyKind::kPeakEwma; }
  std::unique_ptr<Picker> Build(std::span<const Candidate> candidates,
                                const ServicePolicy&) const override {
    return std::make_unique<PowerOfTwoChoicesPicker<LowerCost>>(candidates, LowerCost{});
  }
};

}  // namespace

void RegisterPeakEwma(PolicyRegistry& registry) {
  registry.Register(std::make_unique<PeakEwmaFactory>());
}

}  // namespace podlb::balancing
