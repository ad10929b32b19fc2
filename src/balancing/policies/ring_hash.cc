// ring_hash: consistent hashing on a request header (Envoy's and gRPC's RING_HASH). Each
// endpoint owns points on a 64-bit ring placed by hashing its host:port, so when one of N pods
// leaves only about 1/N of the keys move. Requests without the header rotate like round robin.
#include <algorithm>
#include <atomic>
#include <string>
#include <vector>

#include "balancing/picker.h"
#include "core/hash.h"

namespace podlb::balancing {
namespace {

// About kMinRingSize points in all (Envoy's and gRPC's minimum_ring_size default), at least
// kMinPointsPerWeight per unit of weight. Points per weight are rounded up to a power of two so
// that a pod leaving or joining rarely changes how many points the others have: if it did,
// keys would move between pods that stayed. 10 pods get 128 points each; at 5,000 pods the ring
// holds 40k points (640 KB), small enough for a binary search within the pick budget.
constexpr uint64_t kMinRingSize = 1024;
constexpr uint64_t kMinPointsPerWeight = 8;
constexpr uint64_t kMaxRingSize = 1 << 20;

uint64_t PointsPerWeight(uint64_t total_weight) {
  uint64_t wanted = std::max(kMinPointsPerWeight, (kMinRingSize + total_weight - 1) / total_weight);
  uint64_t points = 1;
  while (points < wanted) points <<= 1;
  while (points > 1 && points * total_weight > kMaxRingSize) points >>= 1;
  return points;
}

class RingHashPicker final : public Picker {
 public:
  RingHashPicker(std::span<const Candidate> candidates, uint64_t start)
      : candidates_(candidates), next_(start) {
    uint64_t total = 0;
    for (const Candidate& c : candidates_) total += std::max<uint32_t>(c.weight, 1);
    const uint64_t per_weight = PointsPerWeight(total);
    ring_.reserve(total * per_weight);
    for (uint32_t pos = 0; pos < candidates_.size(); ++pos) {
      const Candidate& c = candidates_[pos];
      const uint64_t points = per_weight * std::max<uint32_t>(c.weight, 1);
      const uint64_t base = Fnv1a64(c.key);
      for (uint64_t i = 0; i < points; ++i) ring_.push_back({Mix64(base + i * 0x9e3779b97f4a7c15ULL), pos});
    }
    std::sort(ring_.begin(), ring_.end(),
              [](const Point& x, const Point& y) { return x.hash < y.hash; });
  }

  uint32_t Pick(const PickArgs& args) const override {
    const size_t n = candidates_.size();
    if (!args.has_hash) {
      const uint64_t start = next_.fetch_add(1, std::memory_order_relaxed);
      for (size_t i = 0; i < n; ++i) {
        const Candidate& c = candidates_[(start + i) % n];
        if (args.Acceptable(c)) return c.index;
      }
      return candidates_[start % n].index;
    }
    auto it = std::lower_bound(ring_.begin(), ring_.end(), args.hash,
                               [](const Point& p, uint64_t h) { return p.hash < h; });
    if (it == ring_.end()) it = ring_.begin();
    const uint32_t owner = it->position;
    // The key's owner, or the next distinct endpoint clockwise that is acceptable.
    for (size_t step = 0; step < ring_.size(); ++step) {
      const Candidate& c = candidates_[it->position];
      if (args.Acceptable(c)) return c.index;
      if (++it == ring_.end()) it = ring_.begin();
    }
    return candidates_[owner].index;
  }

 private:
  struct Point {
    uint64_t hash;
    uint32_t position;  // in candidates_
  };
  std::span<const Candidate> candidates_;
  std::vector<Point> ring_;
  mutable std::atomic<uint64_t> next_;
};

class RingHashFactory final : public PolicyFactory {
 public:
  PolicyKind kind() const override { return PolicyKind::kRingHash; }
  std::unique_ptr<Picker> Build(std::span<const Candidate> candidates,
                                const ServicePolicy&) const override {
    return std::make_unique<RingHashPicker>(candidates, StartingCursor(candidates));
  }
};

}  // namespace

void RegisterRingHash(PolicyRegistry& registry) {
  registry.Register(std::make_unique<RingHashFactory>());
}

}  // namespace podlb::balancing
