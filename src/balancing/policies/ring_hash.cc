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
    std::vector<Point> ring;
    ring.reserve(total * per_weight);
    for (uint32_t pos = 0; pos < candidates_.size(); ++pos) {
      const Candidate& c = candidates_[pos];
      const uint64_t points = per_weight * std::max<uint32_t>(c.weight, 1);
      const uint64_t base = Fnv1a64(c.key);
      for (uint64_t i = 0; i < points; ++i)
        ring.push_back({Mix64(base + i * 0x9e3779b97f4a7c15ULL), pos});
    }
    std::sort(ring.begin(), ring.end(),
              [](const Point& x, const Point& y) { return x.hash < y.hash; });
    // Hashes and owners apart, so the search touches only the dense hash array; and a table by
    // the hash's top bits narrows the search to the few points of one slice of the ring (at
    // 5,000 pods a plain binary search over 40k points missed the cache at every step).
    hashes_.reserve(ring.size());
    owners_.reserve(ring.size());
    for (const Point& p : ring) {
      hashes_.push_back(p.hash);
      owners_.push_back(p.position);
    }
    slice_start_.resize((size_t{1} << kSliceBits) + 1);
    size_t at = 0;
    for (size_t slice = 0; slice < (size_t{1} << kSliceBits); ++slice) {
      while (at < hashes_.size() && (hashes_[at] >> (64 - kSliceBits)) < slice) ++at;
      slice_start_[slice] = static_cast<uint32_t>(at);
    }
    slice_start_.back() = static_cast<uint32_t>(hashes_.size());
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
    const size_t slice = args.hash >> (64 - kSliceBits);
    auto first = hashes_.begin() + slice_start_[slice];
    auto last = hashes_.begin() + slice_start_[slice + 1];
    size_t at = static_cast<size_t>(std::lower_bound(first, last, args.hash) - hashes_.begin());
    if (at == hashes_.size()) at = 0;
    const uint32_t owner = owners_[at];
    // The key's owner, or the next endpoint clockwise that is acceptable.
    for (size_t step = 0; step < hashes_.size(); ++step) {
      const Candidate& c = candidates_[owners_[at]];
      if (args.Acceptable(c)) return c.index;
      if (++at == hashes_.size()) at = 0;
    }
    return candidates_[owner].index;
  }

 private:
  struct Point {
    uint64_t hash;
    uint32_t position;  // in candidates_
  };
  static constexpr int kSliceBits = 12;  // 4,096 slices: ~10 points each at 5,000 pods

  std::span<const Candidate> candidates_;
  std::vector<uint64_t> hashes_;         // sorted ring positions
  std::vector<uint32_t> owners_;         // candidate position of each
  std::vector<uint32_t> slice_start_;    // first point of each slice of the ring
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
