// round_robin: endpoints in turn, each as often as its weight (smooth weighted round robin, so
// a heavy endpoint's turns are spread out rather than bunched).
#include <algorithm>
#include <atomic>
#include <numeric>
#include <vector>

#include "balancing/picker.h"

namespace podlb::balancing {
namespace {

// Longest schedule kept; larger weight sums are scaled down to fit.
constexpr uint64_t kMaxScheduleLength = 1 << 16;

class RoundRobinPicker final : public Picker {
 public:
  RoundRobinPicker(std::span<const Candidate> candidates, uint64_t start)
      : candidates_(candidates), next_(start) {
    BuildSchedule();
  }

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
  void BuildSchedule() {
    uint64_t total = 0;
    uint32_t common = 0;
    for (const Candidate& c : candidates_) {
      total += std::max<uint32_t>(c.weight, 1);
      common = std::gcd(common, std::max<uint32_t>(c.weight, 1));
    }
    if (common == static_cast<uint32_t>(total / candidates_.size()) &&
        total == uint64_t{common} * candidates_.size()) {
      schedule_.resize(candidates_.size());  // equal weights: plain rotation
      std::iota(schedule_.begin(), schedule_.end(), 0);
      return;
    }
    std::vector<int64_t> weights;
    for (const Candidate& c : candidates_) {
      uint64_t w = std::max<uint32_t>(c.weight, 1) / common;
      uint64_t scaled_total = total / common;
      if (scaled_total > kMaxScheduleLength) w = std::max<uint64_t>(1, w * kMaxScheduleLength / scaled_total);
      weights.push_back(static_cast<int64_t>(w));
    }
    const int64_t sum = std::accumulate(weights.begin(), weights.end(), int64_t{0});
    std::vector<int64_t> current(weights.size(), 0);
    schedule_.reserve(sum);
    for (int64_t step = 0; step < sum; ++step) {
      size_t best = 0;
      for (size_t i = 0; i < weights.size(); ++i) {
        current[i] += weights[i];
        if (current[i] > current[best]) best = i;
      }
      current[best] -= sum;
      schedule_.push_back(static_cast<uint32_t>(best));
    }
  }

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
