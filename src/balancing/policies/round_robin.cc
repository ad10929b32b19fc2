// round_robin: endpoints in turn, each as often as its weight (smooth weighted round robin, so
// a heavy endpoint's turns are spread out rather than bunched).
#include <atomic>
#include <vector>

#include "balancing/picker.h"
#include "balancing/weighted_schedule.h"

namespace podlb::balancing {
namespace {

class RoundRobinPicker final : public Picker {
 public:
  RoundRobinPicker(std::span<const Candidate> candidates, uint64_t start)
      : candidates_(candidates), schedule_(WeightedSchedule(candidates)), next_(start) {}

  uint32_t Pick(const PickArgs& args) const override {
    const size_t n = schedule_.size();
    const uint64_t start = next_.fetch_add(1, std::memory_order_relaxed);
    for (size_t i = 0; i < candidates_.size() && i < n; ++i) {
      const Candidate& c = candidates_[schedule_[(start + i) % n]];
      if (args.Acceptable(c)) return c.index;
    }
    // Nothing acceptable: let the call fail on its turn's endpoint, with that endpoint's reason.
    return candidates_[schedule_[start % n]].index;
  }

 private:
  std::span<const Candidate> candidates_;
  std::vector<uint32_t> schedule_;  // positions in candidates_
  // Relaxed: the order need not be exact, only even.
  mutable std::atomic<uint64_t> next_;
};

class RoundRobinFactory final : public PolicyFactory {
 public:
  PolicyKind kind() const override { return PolicyKind::kRoundRobin; }
  std::unique_ptr<Picker> Build(std::span<const Candidate> candidates,
                                const ServicePolicy&) const override {
    // Start where the candidates' hash says, so a fleet of clients does not start in step.
    return std::make_unique<RoundRobinPicker>(candidates, StartingCursor(candidates));
  }
};

}  // namespace

void RegisterRoundRobin(PolicyRegistry& registry) {
  registry.Register(std::make_unique<RoundRobinFactory>());
}

}  // namespace podlb::balancing
