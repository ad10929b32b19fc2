// Subsetting: which of a Service's endpoints one client (a proxy, a library channel) connects to,
// so that 1,000 clients of a 5,000-pod Service hold 25,000 connections instead of 5 million.
// Every client computes its own subset from the endpoint set and its own client index, with no
// coordination; all clients that see the same set agree on the whole assignment. Pure functions:
// callable from any thread. docs/balancing.md ("Subsetting") explains the choice of algorithm.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace podlb::balancing {

// A client's place in the fleet. Balance needs clients numbered 0, 1, 2, ... (as a StatefulSet
// numbers its pods): clients are dealt into rounds of S = endpoints / subset_size slots, each
// slot of a round a different part of the Service, so every pod gets about the same number of
// clients (docs/balancing.md).
// An id without such a number still gets a stable subset, but the fleet then balances no better
// than random subsetting (a pod's clients vary as a binomial count).
struct SubsetClient {
  uint64_t index = 0;
  bool ordinal = false;  // the index is the id's trailing number, not a hash of it
};
// "client-7", "podlb-proxy-12", "web-0" → 7, 12, 0 (ordinal); "42" → 42; anything else (a
// Deployment's "web-7d9f8-x2kq5") → a 64-bit hash of the id.
SubsetClient SubsetClientFromId(std::string_view client_id);

// The stable key an endpoint is subset by: its pod name, or host:port when it has none (DNS and
// file sources). Clients must agree on it, so it depends only on what every client sees.
uint64_t SubsetKeyHash(std::string_view pod_name, std::string_view host_port);

// The positions (ascending) in `key_hashes` — one per endpoint, in the set's order — of the
// endpoints `client` connects to: at least 0.7 × `subset_size` of them and up to about 1.9×
// (a hashed arc's Poisson spread, BENCHMARKS.md), all of them when there are at most
// subset_size·1.5 endpoints or subset_size is 0. Never empty when `key_hashes` is not.
std::vector<uint32_t> ChooseSubset(std::span<const uint64_t> key_hashes, uint64_t client_index,
                                   uint32_t subset_size);

// A member of a client's subset and its share of the client's calls.
struct SubsetMember {
  uint32_t position = 0;  // in key_hashes
  double share = 0;       // 0..1; a client's shares sum to 1
};
// ChooseSubset's members, each with its share of this client's calls, chosen so that the fleet's
// calls per pod even out although subsets differ in size: every client computes the calls the
// clients of the earlier rounds and of its own round send (clients are numbered 0..N-1, so every
// earlier round is whole) and takes its part of its round's even-out. Every member gets at
// least a quarter of an even share (a connection kept must carry calls, or nothing checks its
// health). A client past 16 rounds, or with a hashed id, spreads its calls evenly. Costs one
// pass over the endpoints per round up to the client's (3 ms at 5,000 endpoints in round 4).
std::vector<SubsetMember> ChooseWeightedSubset(std::span<const uint64_t> key_hashes,
                                               uint64_t client_index, uint32_t subset_size);

// The number of slots per round for `endpoints` endpoints: round(endpoints / subset_size), at
// least 1. A client's round is index / slots, its slot index % slots.
uint32_t SubsetSlots(size_t endpoints, uint32_t subset_size);

}  // namespace podlb::balancing
