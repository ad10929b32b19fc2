// The policy interface (gRPC's pattern: an interface, a factory per policy, explicit
// registration). A PolicyFactory builds an immutable Picker over a Service's candidates; the
// data path calls Picker::Pick from any number of threads at once, without locks.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "balancing/candidate.h"
#include "balancing/endpoint_stats.h"
#include "balancing/service_policy.h"
#include "balancing/weighted_schedule.h"
#include "core/hash.h"

namespace podlb::balancing {

inline constexpr uint32_t kNoEndpoint = UINT32_MAX;

// Per-pick inputs, filled by the adapter. `random` comes from the caller's own generator (a
// thread-local one on the data path, a seeded one in tests), so pickers hold no RNG state.
struct PickArgs {
  int64_t now_nanos = 0;
  uint64_t random = 0;
  // ring_hash: the hash of the request's key header, when the request has one.
  bool has_hash = false;
  uint64_t hash = 0;
  // An endpoint not to choose unless it is the only one (a retry's previous attempt).
  uint32_t exclude = kNoEndpoint;
  // Optional veto from the adapter (the library skips channels in TRANSIENT_FAILURE while
  // another is usable). Called with a table index; null: every candidate is usable.
  bool (*usable)(const void* context, uint32_t index) = nullptr;
  const void* usable_context = nullptr;

  bool Acceptable(const Candidate& c) const {
    return c.index != exclude && (usable == nullptr || usable(usable_context, c.index));
  }
};

class Picker {
 public:
  virtual ~Picker() = default;
  // A table index, or kNoEndpoint when there are no candidates. When no candidate is
  // acceptable the picker still returns one (the call then fails on it, with its reason).
  virtual uint32_t Pick(const PickArgs& args) const = 0;
};

class PolicyFactory {
 public:
  virtual ~PolicyFactory() = default;
  virtual PolicyKind kind() const = 0;
  // `candidates` is non-empty and outlives the picker (the Balancer keeps both together).
  virtual std::unique_ptr<Picker> Build(std::span<const Candidate> candidates,
                                        const ServicePolicy& policy) const = 0;
};

// The policies a process knows. Filled at start-up by explicit Register* calls (no static
// initialisers), read-only afterwards: safe to share between threads.
class PolicyRegistry {
 public:
  void Register(std::unique_ptr<PolicyFactory> factory);
  const PolicyFactory* Find(PolicyKind kind) const;

 private:
  std::map<PolicyKind, std::unique_ptr<PolicyFactory>> factories_;
};

void RegisterRoundRobin(PolicyRegistry& registry);
void RegisterLeastRequest(PolicyRegistry& registry);
void RegisterPeakEwma(PolicyRegistry& registry);
void RegisterRingHash(PolicyRegistry& registry);
// Every policy above.
void RegisterBuiltinPolicies(PolicyRegistry& registry);
// A registry with the built-in policies, for the common case (immutable, shared).
const PolicyRegistry& BuiltinPolicies();

// Where a picker's rotation starts: differs between pickers (and so between the clients of one
// Service), so a fleet does not send its first calls to the same pod in step.
inline uint64_t StartingCursor(std::span<const Candidate> candidates) {
  return Mix64(reinterpret_cast<uintptr_t>(candidates.data()));
}

// Power of two choices, the frame of least_request and peak_ewma: the first candidate from a
// rotating cursor (so ties spread calls evenly at low load), the second at random;
// `second_better(first, second, now)` says whether the second wins. Then the winner if the
// adapter accepts it, else the loser, else the first acceptable candidate after the cursor's.
// Unequal weights (an endpoints file's, subsetting's) shape both draws: the cursor walks a
// smooth weighted schedule and the second is drawn in proportion to weight, so where the
// comparison ties (idle pods, equally fast) calls go in proportion to weight, as Envoy's
// least_request does with weights; the adapters' comparisons count load per unit of weight.
template <typename SecondBetter>
class PowerOfTwoChoicesPicker final : public Picker {
 public:
  PowerOfTwoChoicesPicker(std::span<const Candidate> candidates, SecondBetter second_better)
      : candidates_(candidates),
        second_better_(std::move(second_better)),
        next_(StartingCursor(candidates)) {
    if (!EqualWeights(candidates)) {
      schedule_ = WeightedSchedule(candidates);
      draw_.emplace(candidates);
    }
  }

  uint32_t Pick(const PickArgs& args) const override {
    const size_t n = candidates_.size();
    if (n == 1) return candidates_[0].index;
    const uint64_t turn = next_.fetch_add(1, std::memory_order_relaxed);
    size_t a, b;
    if (!draw_) {
      a = turn % n;
      b = args.random % (n - 1);
      if (b >= a) ++b;  // distinct from a
    } else {
      a = schedule_[turn % schedule_.size()];
      b = draw_->Draw(args.random);
      // The heavy candidate may be drawn twice; then any other, uniformly (the random's upper
      // half, which the draw above hardly depends on).
      if (b == a) b = (a + 1 + (args.random >> 32) % (n - 1)) % n;
    }
    const Candidate* winner = &candidates_[a];
    const Candidate* loser = &candidates_[b];
    if (second_better_(*winner, *loser, args.now_nanos)) std::swap(winner, loser);
    if (args.Acceptable(*winner)) return winner->index;
    if (args.Acceptable(*loser)) return loser->index;
    for (size_t i = 1; i < n; ++i) {
      const Candidate& c = candidates_[(a + i) % n];
      if (args.Acceptable(c)) return c.index;
    }
    return winner->index;  // nothing acceptable: the call fails on it, with its reason
  }

 private:
  std::span<const Candidate> candidates_;
  const SecondBetter second_better_;
  // Relaxed: the order need not be exact, only even.
  mutable std::atomic<uint64_t> next_;
  // Unequal weights only: the cursor's weighted turns, and the second draw.
  std::vector<uint32_t> schedule_;
  std::optional<WeightedDraw> draw_;
};

}  // namespace podlb::balancing
