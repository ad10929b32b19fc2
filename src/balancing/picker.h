// The policy interface (gRPC's pattern: an interface, a factory per policy, explicit
// registration). A PolicyFactory builds an immutable Picker over a Service's candidates; the
// data path calls Picker::Pick from any number of threads at once, without locks.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string_view>

#include "balancing/endpoint_stats.h"
#include "balancing/service_policy.h"
#include "core/hash.h"

namespace podlb::balancing {

// One endpoint a picker may choose. `index` is the endpoint's position in the Balancer's
// EndpointTable (what the adapter maps to its connection); `key` identifies the pod stably
// across tables (ring positions hash it).
struct Candidate {
  uint32_t index = 0;
  uint32_t weight = 1;
  EndpointStats* stats = nullptr;  // owned by the table, which outlives the picker
  std::string_view key;            // "host:port", owned by the table
};

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

// Helpers shared by the P2C policies.
namespace p2c {
// Two distinct candidate positions: the first from `cursor` (so ties spread calls evenly at low
// load), the second at random.
inline void Choose(size_t n, uint64_t cursor, uint64_t random, size_t* first, size_t* second) {
  *first = cursor % n;
  size_t b = random % (n - 1);
  if (b >= *first) ++b;
  *second = b;
}

// The winner of a comparison if the adapter accepts it, else the loser, else the first
// acceptable candidate after position `start`; the winner when none is acceptable (the call
// then fails on it, with its reason).
inline uint32_t Settle(std::span<const Candidate> candidates, const PickArgs& args, size_t start,
                       const Candidate& winner, const Candidate& loser) {
  if (args.Acceptable(winner)) return winner.index;
  if (args.Acceptable(loser)) return loser.index;
  for (size_t i = 1; i < candidates.size(); ++i) {
    const Candidate& c = candidates[(start + i) % candidates.size()];
    if (args.Acceptable(c)) return c.index;
  }
  return winner.index;
}
}  // namespace p2c

}  // namespace podlb::balancing
