#include "balancing/subset.h"

#include <algorithm>
#include <cctype>

#include "core/hash.h"

namespace podlb::balancing {
namespace {

// The algorithm ("rounds with bounded overflow"; docs/balancing.md has the measurements and the
// alternatives it was chosen over):
//  1. Clients are dealt into rounds of S slots: client i is slot i % S of round i / S. A full
//     round covers every endpoint exactly once, so with whole rounds every pod gets exactly
//     (clients / S) clients, whatever the pods are called.
//  2. In each round, every endpoint hashes (its key with the round's seed) to a home slot. A pod
//     replaced by another moves nothing else: its slot in each round loses it, the new pod's
//     slot gains it. That is what makes a replacement cost about one pod's connections. Hashing
//     makes slots lumpy, though (a binomial count around the subset size, ±20 %), and a client
//     spreads its calls over its slot, so a pod in a small slot would take twice the calls of
//     one in a large slot.
//  3. The lumpiness correction: a slot keeps at most subset_size + kKeepExtra of its pods (by a
//     per-pod priority hash); each pod above that moves to the least full (by home count) of
//     kAlternatives other slots it hashes to, if that slot's home count is below subset_size.
//     Decisions read home counts only, never the outcome of other moves, so one pod's change
//     moves at most a handful of others (no cascade).
// The constants trade calls balance against churn; measured by bench/balancing/subset_sim.
constexpr uint32_t kAlternatives = 6;
constexpr uint32_t kKeepExtra = 1;
constexpr uint64_t kRoundSeed = 0x5ab5e7c0ffee1234ULL;
constexpr uint64_t kPrioritySeed = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kAlternativeSeed = 0xc2b2ae3d27d4eb4fULL;

// A uniform 64-bit hash mapped onto [0, slots) without modulo bias.
uint32_t SlotOf(uint64_t hash, uint32_t slots) {
  return static_cast<uint32_t>((static_cast<unsigned __int128>(hash) * slots) >> 64);
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
  const size_t n = key_hashes.size();
  std::vector<uint32_t> chosen;
  const uint32_t slots = SubsetSlots(n, subset_size);
  if (subset_size == 0 || slots <= 1) {
    chosen.resize(n);
    for (uint32_t i = 0; i < n; ++i) chosen[i] = i;
    return chosen;
  }
  const uint64_t round = client_index / slots;
  const uint32_t own = static_cast<uint32_t>(client_index % slots);
  const uint64_t seed = Mix64(round ^ kRoundSeed);

  // Home slots and their counts; pods grouped by home slot (counting sort).
  std::vector<uint64_t> position(n);
  std::vector<uint32_t> home(n), count(slots, 0), start(slots + 1, 0);
  for (uint32_t i = 0; i < n; ++i) {
    position[i] = Mix64(key_hashes[i] ^ seed);
    home[i] = SlotOf(position[i], slots);
    ++count[home[i]];
  }
  for (uint32_t s = 0; s < slots; ++s) start[s + 1] = start[s] + count[s];
  std::vector<uint32_t> by_slot(n);
  {
    std::vector<uint32_t> fill(start.begin(), start.end() - 1);
    for (uint32_t i = 0; i < n; ++i) by_slot[fill[home[i]]++] = i;
  }

  // Which slot each pod ends in: home, unless its home is over capacity and it is among the
  // lowest-priority pods there and an alternative slot is short of pods.
  const uint32_t keep = subset_size + kKeepExtra;
  std::vector<uint32_t> final_slot(home);
  std::vector<std::pair<uint64_t, uint32_t>> members;
  for (uint32_t s = 0; s < slots; ++s) {
    if (count[s] <= keep) continue;
    members.clear();
    for (uint32_t j = start[s]; j < start[s + 1]; ++j) {
      const uint32_t i = by_slot[j];
      // Ties (two endpoints with one key) fall back to the set's order, which every client shares.
      members.emplace_back(Mix64(position[i] ^ kPrioritySeed), i);
    }
    std::nth_element(members.begin(), members.begin() + keep, members.end());
    for (size_t m = keep; m < members.size(); ++m) {
      const uint32_t i = members[m].second;
      uint32_t best = s;
      uint32_t best_count = UINT32_MAX;
      for (uint32_t a = 0; a < kAlternatives; ++a) {
        const uint32_t alt = SlotOf(Mix64(position[i] ^ (kAlternativeSeed * (a + 1))), slots);
        if (count[alt] < best_count) {
          best = alt;
          best_count = count[alt];
        }
      }
      if (best_count < subset_size) final_slot[i] = best;
    }
  }

  // The client's own slot; an empty one (only possible for tiny Services) borrows the next.
  for (uint32_t step = 0; step < slots && chosen.empty(); ++step) {
    const uint32_t target = (own + step) % slots;
    for (uint32_t i = 0; i < n; ++i)
      if (final_slot[i] == target) chosen.push_back(i);
  }
  return chosen;
}

}  // namespace podlb::balancing
