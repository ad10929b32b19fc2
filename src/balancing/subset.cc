#include "balancing/subset.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/hash.h"

namespace podlb::balancing {
namespace {

// The algorithm ("rounds of arcs with borrowing and shares"; docs/balancing.md has the
// measurements and the alternatives it was chosen over):
//  1. Clients are dealt into rounds of S slots: client i is slot i % S of round i / S. A full
//     round covers every endpoint, so with whole rounds every pod gets at least (clients / S)
//     clients, whatever the pods are called.
//  2. In each round, every endpoint hashes (its key with the round's seed) to a position on a
//     ring cut into S equal arcs; slot s's client takes the pods of arc s. A pod replaced by
//     another moves nothing else: its arc in each round loses it, the new pod's arc gains it.
//     That is what makes a replacement cost about one pod's connections. Hashing makes arcs
//     lumpy, though (a Poisson count around the subset size: 10..45 pods for 25).
//  3. Borrowing and lending, for the arcs far from the mean: an arc with fewer than 0.7 × the
//     subset size also takes the pods nearest to it on the ring, outside it, until it has that
//     many; an arc with more than 1.3 × also gives each of its outermost extras to the neighbour
//     on that side. Those pods get a second client in that round, which shares evens out (step
//     4). Both read only the arcs' own pods and their neighbours', so a pod that comes or goes
//     changes at most a borrower's or a lender's farthest pod (a connection), never a cascade;
//     and only arcs far from the mean take part, so a replacement rarely touches one.
//  4. Shares (ChooseWeightedSubset): a client does not spread its calls evenly over its members
//     but so as to even out the fleet's calls per pod. Every client can compute every earlier
//     round's and its own round's subsets (clients are numbered 0..N-1, so every earlier round
//     is whole), so every client computes the same loads: each round's clients in turn water-
//     fill their one unit of calls over their members above the loads so far, several passes
//     over the round (a block coordinate descent on the sum of squared loads), then the next
//     round. The last round cannot be corrected by a later one; step 3 is what keeps its lumpy
//     arcs from taking twice or half the calls. Shares change where calls go, never which pods a
//     client connects to, so they cost no churn.
// Measured by bench/balancing/subset_sim (BENCHMARKS.md, "Subsetting"): at 1,000 clients of
// 5,000 pods and subsets of 25, calls max/min 1.17-1.21, connections 5..7, and a replacement
// opens 5.7-5.8 connections on average, at most 9. Wider bounds balance calls worse in the last
// round; narrower ones move more pods per replacement (BENCHMARKS.md has the frontier).
constexpr double kLeastOfSubset = 0.7;
constexpr double kMostOfSubset = 1.3;
// Passes over a round's clients (bench/balancing/subset_borrow_prototype, worst of six pod
// sets: calls max/min 1.29 with one pass, 1.22 with two, 1.21 with four or twenty).
constexpr int kSharePasses = 4;
// Rounds whose loads a client computes for its shares (each costs a pass over the endpoints,
// 0.6 ms at 5,000). A client past them spreads its calls evenly: by then the earlier rounds'
// even-out dominates each pod's calls, and one more round's lumps (arcs of 18..33) move them
// little. So does a client with a hashed id, whose round number is astronomically large and has
// no other real client (solving its round alone would follow phantom neighbours: calls max/min
// 89 in subset_sim's hashed-id row, against 24 with even shares and 14 for random subsetting).
constexpr uint64_t kMaxWeightedRounds = 16;
// Every member gets at least this part of an even share of its client's calls: a member with no
// calls would be a connection kept for nothing, whose health no call would check.
constexpr double kMinShareOfEven = 0.25;
constexpr uint64_t kRoundSeed = 0x5ab5e7c0ffee1234ULL;

// A uniform 64-bit hash mapped onto [0, slots) without modulo bias.
uint32_t SlotOf(uint64_t hash, uint32_t slots) {
  return static_cast<uint32_t>((static_cast<unsigned __int128>(hash) * slots) >> 64);
}

// The first ring position of arc `s` (the least h with SlotOf(h) == s); arc `slots` is arc 0
// again, one turn on (2^64 wraps to 0).
uint64_t ArcStart(uint64_t s, uint32_t slots) {
  return static_cast<uint64_t>(((static_cast<unsigned __int128>(s) << 64) + slots - 1) / slots);
}

// One round's ring: every endpoint's position, and the endpoints in ring order cut into arcs.
struct Round {
  // Endpoints (positions in key_hashes) in ring order; arc s is ring[arc[s] .. arc[s + 1]).
  std::vector<uint32_t> ring;
  std::vector<uint64_t> position;  // per endpoint
  std::vector<uint32_t> arc;
};

Round LayOutRound(std::span<const uint64_t> key_hashes, uint64_t round, uint32_t slots) {
  const auto n = static_cast<uint32_t>(key_hashes.size());
  const uint64_t seed = Mix64(round ^ kRoundSeed);
  Round r;
  r.position.resize(n);
  r.arc.assign(slots + 1, 0);
  // Counting sort by arc, then each arc (about subset_size endpoints) by position: the ring.
  std::vector<uint32_t> arc_of(n);
  for (uint32_t i = 0; i < n; ++i) {
    r.position[i] = Mix64(key_hashes[i] ^ seed);
    arc_of[i] = SlotOf(r.position[i], slots);
    ++r.arc[arc_of[i] + 1];
  }
  for (uint32_t s = 0; s < slots; ++s) r.arc[s + 1] += r.arc[s];
  r.ring.resize(n);
  std::vector<uint32_t> fill(r.arc.begin(), r.arc.end() - 1);
  for (uint32_t i = 0; i < n; ++i) r.ring[fill[arc_of[i]]++] = i;
  for (uint32_t s = 0; s < slots; ++s) {
    // Ties (two endpoints with one key) fall back to the set's order, which every client shares.
    std::sort(r.ring.begin() + r.arc[s], r.ring.begin() + r.arc[s + 1], [&](uint32_t a, uint32_t b) {
      return r.position[a] != r.position[b] ? r.position[a] < r.position[b] : a < b;
    });
  }
  return r;
}

// Slot s's members in round `r`: its arc; then, while fewer than `least`, the nearest endpoints
// outside it (ring distance from the arc's ends; the clockwise one on a tie); then what its
// neighbouring arcs lend, if they have more than `most`.
std::vector<uint32_t> SlotMembers(const Round& r, uint32_t s, uint32_t slots, uint32_t least,
                                  uint32_t most) {
  const auto n = static_cast<uint32_t>(r.ring.size());
  std::vector<uint32_t> members(r.ring.begin() + r.arc[s], r.ring.begin() + r.arc[s + 1]);
  const uint64_t lo = ArcStart(s, slots), hi = ArcStart(uint64_t{s} + 1, slots);
  uint32_t right = r.arc[s + 1] % n;             // next clockwise candidate (ring index)
  uint32_t left = (r.arc[s] + n - 1) % n;        // next counter-clockwise candidate
  while (members.size() < std::min(least, n)) {
    // Unsigned differences are ring distances: positions wrap as the ring does.
    const uint64_t right_distance = r.position[r.ring[right]] - hi;
    const uint64_t left_distance = lo - 1 - r.position[r.ring[left]];
    if (right_distance <= left_distance) {
      members.push_back(r.ring[right]);
      right = (right + 1) % n;
    } else {
      members.push_back(r.ring[left]);
      left = (left + n - 1) % n;
    }
  }
  // What the neighbouring arcs lend: an arc with more than `most` pods gives each of its
  // outermost extras (by ring distance from its nearer end) to the neighbour on that side too.
  for (int side = 0; side < 2; ++side) {
    const uint32_t t = side == 0 ? (s + slots - 1) % slots : (s + 1) % slots;
    const uint32_t size = r.arc[t + 1] - r.arc[t];
    if (size <= most) continue;
    const uint64_t t_lo = ArcStart(t, slots), t_hi = ArcStart(uint64_t{t} + 1, slots);
    uint32_t first = r.arc[t], last = r.arc[t + 1] - 1;
    for (uint32_t extra = 0; extra < size - most; ++extra) {
      const bool from_start =
          r.position[r.ring[first]] - t_lo < t_hi - 1 - r.position[r.ring[last]];
      const uint32_t pod = from_start ? r.ring[first++] : r.ring[last--];
      // Arc t's start borders t - 1 (s when side is 1), its end t + 1 (s when side is 0); with
      // two arcs, both ends border s.
      const bool to_s = slots == 2 || from_start == (side == 1);
      if (to_s && std::find(members.begin(), members.end(), pod) == members.end())
        members.push_back(pod);
    }
  }
  return members;
}

// Spends `budget` calls on `members`, raising the lowest of their `load`s to one level; adds
// what each got to `share` (aligned with members).
void WaterFill(std::span<const uint32_t> members, double budget, std::vector<double>& load,
               std::span<double> share) {
  std::vector<double> levels;
  levels.reserve(members.size());
  for (uint32_t i : members) levels.push_back(load[i]);
  std::sort(levels.begin(), levels.end());
  double below = 0, level = 0;
  for (size_t k = 0; k < levels.size(); ++k) {
    below += levels[k];
    level = (budget + below) / static_cast<double>(k + 1);
    if (k + 1 == levels.size() || level <= levels[k + 1]) break;
  }
  for (size_t k = 0; k < members.size(); ++k) {
    const double raise = std::max(0.0, level - load[members[k]]);
    load[members[k]] += raise;
    share[k] += raise;
  }
}

// A whole round's clients spending their calls over their members, on top of `load` (which
// they raise). Returns slot `own`'s shares, aligned with members[own].
std::vector<double> SpendRound(const std::vector<std::vector<uint32_t>>& members, uint32_t own,
                               std::vector<double>& load) {
  std::vector<std::vector<double>> shares(members.size());
  for (int pass = 0; pass < kSharePasses; ++pass) {
    for (size_t s = 0; s < members.size(); ++s) {
      const std::vector<uint32_t>& m = members[s];
      std::vector<double>& share = shares[s];
      if (m.empty()) continue;
      // Take back this client's calls, then spend them again given everyone else's.
      if (share.empty()) share.assign(m.size(), 0.0);
      const double least = kMinShareOfEven / static_cast<double>(m.size());
      for (size_t k = 0; k < m.size(); ++k) {
        load[m[k]] += least - share[k];
        share[k] = least;
      }
      WaterFill(m, 1.0 - kMinShareOfEven, load, share);
    }
  }
  return shares[own];
}

// fraction × subset_size, rounded up (0.7 × 25 → 18, 0.7 × 4 → 3, 1.3 × 4 → 6).
uint32_t SizeBound(double fraction, uint32_t subset_size) {
  return static_cast<uint32_t>(std::ceil(fraction * subset_size - 1e-9));
}

// ChooseWeightedSubset, or (without shares, which cost a pass per earlier round) ChooseSubset
// with even shares.
std::vector<SubsetMember> Choose(std::span<const uint64_t> key_hashes, uint64_t client_index,
                                 uint32_t subset_size, bool with_shares) {
  const auto n = static_cast<uint32_t>(key_hashes.size());
  const uint32_t slots = SubsetSlots(n, subset_size);
  std::vector<SubsetMember> out;
  if (subset_size == 0 || slots <= 1) {
    for (uint32_t i = 0; i < n; ++i) out.push_back({.position = i, .share = 1.0 / n});
    return out;
  }
  const uint64_t round = client_index / slots;
  const auto own = static_cast<uint32_t>(client_index % slots);
  const uint32_t least = SizeBound(kLeastOfSubset, subset_size);
  const uint32_t most = SizeBound(kMostOfSubset, subset_size);
  auto round_members = [&](const Round& r) {
    std::vector<std::vector<uint32_t>> members(slots);
    for (uint32_t s = 0; s < slots; ++s) members[s] = SlotMembers(r, s, slots, least, most);
    return members;
  };
  const Round mine = LayOutRound(key_hashes, round, slots);
  std::vector<uint32_t> chosen;
  std::vector<double> share;
  if (!with_shares || round > kMaxWeightedRounds) {
    chosen = SlotMembers(mine, own, slots, least, most);
    share.assign(chosen.size(), 1.0 / static_cast<double>(chosen.size()));
  } else {
    // The calls the clients of the earlier rounds send each endpoint, then this round's.
    std::vector<double> load(n, 0.0);
    for (uint64_t r = 0; r < round; ++r)
      SpendRound(round_members(LayOutRound(key_hashes, r, slots)), 0, load);
    const std::vector<std::vector<uint32_t>> members = round_members(mine);
    share = SpendRound(members, own, load);
    chosen = members[own];
  }
  for (size_t k = 0; k < chosen.size(); ++k)
    out.push_back({.position = chosen[k], .share = share[k]});
  std::sort(out.begin(), out.end(),
            [](const SubsetMember& a, const SubsetMember& b) { return a.position < b.position; });
  return out;
}

}  // namespace

SubsetClient SubsetClientFromId(std::string_view id) {
  size_t digits = 0;
  while (digits < id.size() && std::isdigit(static_cast<unsigned char>(id[id.size() - 1 - digits])))
    ++digits;
  // An ordinal: the whole id, or the part after the last '-'; at most 9 digits (no overflow,
  // and a longer number is more likely a hash than a replica number). No leading zeros beyond
  // "0" itself, so "web-007" and "web-7" cannot both claim 7.
  const bool whole = digits == id.size();
  const bool after_dash = digits < id.size() && id[id.size() - 1 - digits] == '-';
  if (digits > 0 && digits <= 9 && (whole || after_dash)) {
    std::string_view number = id.substr(id.size() - digits);
    if (number.size() == 1 || number[0] != '0') {
      uint64_t value = 0;
      for (char c : number) value = value * 10 + static_cast<uint64_t>(c - '0');
      return SubsetClient{.index = value, .ordinal = true};
    }
  }
  return SubsetClient{.index = HashKey(id), .ordinal = false};
}

uint64_t SubsetKeyHash(std::string_view pod_name, std::string_view host_port) {
  return HashKey(pod_name.empty() ? host_port : pod_name);
}

uint32_t SubsetSlots(size_t endpoints, uint32_t subset_size) {
  if (subset_size == 0) return 1;
  const uint64_t slots = (endpoints + subset_size / 2) / subset_size;
  return static_cast<uint32_t>(std::clamp<uint64_t>(slots, 1, UINT32_MAX));
}

std::vector<uint32_t> ChooseSubset(std::span<const uint64_t> key_hashes, uint64_t client_index,
                                   uint32_t subset_size) {
  std::vector<uint32_t> chosen;
  for (const SubsetMember& m : Choose(key_hashes, client_index, subset_size, false))
    chosen.push_back(m.position);
  return chosen;
}

std::vector<SubsetMember> ChooseWeightedSubset(std::span<const uint64_t> key_hashes,
                                               uint64_t client_index, uint32_t subset_size) {
  return Choose(key_hashes, client_index, subset_size, true);
}

}  // namespace podlb::balancing
