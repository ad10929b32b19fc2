#include "balancing/weighted_schedule.h"

#include <algorithm>
#include <numeric>

namespace podlb::balancing {
namespace {

// Longest schedule kept; larger weight sums are scaled down to fit.
constexpr uint64_t kMaxScheduleLength = 1 << 16;

uint32_t WeightOf(const Candidate& c) { return std::max<uint32_t>(c.weight, 1); }

}  // namespace

bool EqualWeights(std::span<const Candidate> candidates) {
  for (const Candidate& c : candidates) {
    if (WeightOf(c) != WeightOf(candidates.front())) return false;
  }
  return true;
}

std::vector<uint32_t> WeightedSchedule(std::span<const Candidate> candidates) {
  std::vector<uint32_t> schedule;
  if (EqualWeights(candidates)) {
    schedule.resize(candidates.size());  // plain rotation
    std::iota(schedule.begin(), schedule.end(), 0);
    return schedule;
  }
  uint64_t total = 0;
  uint32_t common = 0;
  for (const Candidate& c : candidates) {
    total += WeightOf(c);
    common = std::gcd(common, WeightOf(c));
  }
  const uint64_t scaled_total = total / common;
  std::vector<int64_t> weights;
  for (const Candidate& c : candidates) {
    uint64_t w = WeightOf(c) / common;
    if (scaled_total > kMaxScheduleLength) {
      w = std::max<uint64_t>(1, w * kMaxScheduleLength / scaled_total);
    }
    weights.push_back(static_cast<int64_t>(w));
  }
  const int64_t sum = std::accumulate(weights.begin(), weights.end(), int64_t{0});
  std::vector<int64_t> current(weights.size(), 0);
  schedule.reserve(static_cast<size_t>(sum));
  for (int64_t step = 0; step < sum; ++step) {
    size_t best = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
      current[i] += weights[i];
      if (current[i] > current[best]) best = i;
    }
    current[best] -= sum;
    schedule.push_back(static_cast<uint32_t>(best));
  }
  return schedule;
}

WeightedDraw::WeightedDraw(std::span<const Candidate> candidates) {
  cumulative_.reserve(candidates.size());
  uint64_t sum = 0;
  for (const Candidate& c : candidates) cumulative_.push_back(sum += WeightOf(c));
}

uint32_t WeightedDraw::Draw(uint64_t random) const {
  const uint64_t point = random % cumulative_.back();
  return static_cast<uint32_t>(
      std::upper_bound(cumulative_.begin(), cumulative_.end(), point) - cumulative_.begin());
}

}  // namespace podlb::balancing
