// subset_sim: the fleet-level figures of subsetting that no single process can show. Simulates
// C clients of one Service of N pods with subsets of K (no sockets: each client's subset is what
// balancing::ChooseSubset gives it, exactly as the proxy and the library compute it) and prints:
// connections per pod (min, max, ratio, pods without a client), calls per pod when every client
// sends one unit of calls (max/min; spread by podlb's shares, ChooseWeightedSubset, in the rows
// that say so, evenly over the subset in the others), subset sizes, and the connections the
// fleet opens when one pod is replaced by a newly named one, in two steps as Kubernetes does it
// (mean and max over many trials, beside the replaced pod's own connection count). Every row
// sees the same pod set and the same replacements. Rows for the algorithms podlb's was chosen
// over are computed by small reference implementations here, for comparison only. Last, what
// one client's subset costs to compute.
//
//   build/bench/balancing/subset_sim [--clients 1000] [--pods 5000] [--subset 25] [--trials 200]
//                                    [--seed 20261130] [--rows N: only the first N rows]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "balancing/subset.h"
#include "core/hash.h"

namespace {

using podlb::Mix64;
using podlb::balancing::ChooseSubset;
using podlb::balancing::ChooseWeightedSubset;
using podlb::balancing::SubsetMember;
using podlb::balancing::SubsetClientFromId;
using podlb::balancing::SubsetKeyHash;
using podlb::balancing::SubsetSlots;

// client → positions in `pods` of its subset.
using Assign = std::function<std::vector<uint32_t>(const std::vector<uint64_t>& pods,
                                                   uint64_t client_index, uint32_t k)>;

std::vector<uint32_t> Podlb(const std::vector<uint64_t>& pods, uint64_t client, uint32_t k) {
  return ChooseSubset(pods, client, k);
}

// How a client spreads its calls over its subset: podlb's shares; null, evenly.
using Shares = std::function<std::vector<SubsetMember>(const std::vector<uint64_t>& pods,
                                                       uint64_t client_index, uint32_t k)>;

std::vector<SubsetMember> PodlbShares(const std::vector<uint64_t>& pods, uint64_t client,
                                      uint32_t k) {
  return ChooseWeightedSubset(pods, client, k);
}

// gRFC A68 random subsetting: the k pods with the highest rendezvous hash for this client.
std::vector<uint32_t> Random(const std::vector<uint64_t>& pods, uint64_t client, uint32_t k) {
  std::vector<std::pair<uint64_t, uint32_t>> scored;
  for (uint32_t i = 0; i < pods.size(); ++i) scored.emplace_back(Mix64(pods[i] ^ Mix64(client)), i);
  const size_t take = std::min<size_t>(k, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + take, scored.end());
  std::vector<uint32_t> out;
  for (size_t i = 0; i < take; ++i) out.push_back(scored[i].second);
  return out;
}

// The SRE book's deterministic subsetting: rounds of N/k clients, each round a shuffle of the
// pods (here: sorted by a per-round hash, so a name always lands in the same place), each client
// a consecutive run of k.
std::vector<uint32_t> Deterministic(const std::vector<uint64_t>& pods, uint64_t client, uint32_t k) {
  // Rounded like podlb's, so a pod count at a multiple of k does not reshuffle on every step.
  const uint32_t slots = SubsetSlots(pods.size(), k);
  const uint64_t round = client / slots;
  const uint32_t slot = static_cast<uint32_t>(client % slots);
  std::vector<std::pair<uint64_t, uint32_t>> order;
  for (uint32_t i = 0; i < pods.size(); ++i) order.emplace_back(Mix64(pods[i] ^ Mix64(round + 1)), i);
  std::sort(order.begin(), order.end());
  std::vector<uint32_t> out;
  for (size_t j = size_t{slot} * k; j < std::min<size_t>(order.size(), size_t{slot + 1} * k); ++j)
    out.push_back(order[j].second);
  return out;
}

// Rounds of hashed arcs alone (podlb's steps 1 and 2), without borrowing, lending or shares.
std::vector<uint32_t> Arcs(const std::vector<uint64_t>& pods, uint64_t client, uint32_t k) {
  const uint32_t slots = SubsetSlots(pods.size(), k);
  const uint64_t seed = Mix64(client / slots + 77);
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < pods.size(); ++i) {
    const uint64_t h = Mix64(pods[i] ^ seed);
    if (static_cast<uint32_t>((static_cast<unsigned __int128>(h) * slots) >> 64) == client % slots)
      out.push_back(i);
  }
  return out;
}

// podlb's algorithm until 2026-12-01: rounds of hashed slots whose overfull slots (more than
// k + 1 pods) move their lowest-priority extras to the emptiest of 6 alternative slots when that
// one is short (home counts only). Balanced calls 1.23-1.31 evenly spread, but a replacement
// opened 12 connections on average.
std::vector<uint32_t> BoundedOverflow(const std::vector<uint64_t>& pods, uint64_t client,
                                      uint32_t k) {
  const uint32_t n = static_cast<uint32_t>(pods.size()), slots = SubsetSlots(n, k);
  auto slot_of = [&](uint64_t h) {
    return static_cast<uint32_t>((static_cast<unsigned __int128>(h) * slots) >> 64);
  };
  const uint64_t seed = Mix64((client / slots) ^ 0x5ab5e7c0ffee1234ULL);
  std::vector<uint64_t> position(n);
  std::vector<uint32_t> home(n), count(slots, 0);
  std::vector<std::vector<uint32_t>> by_slot(slots);
  for (uint32_t i = 0; i < n; ++i) {
    position[i] = Mix64(pods[i] ^ seed);
    home[i] = slot_of(position[i]);
    ++count[home[i]];
    by_slot[home[i]].push_back(i);
  }
  std::vector<uint32_t> final_slot(home);
  for (uint32_t s = 0; s < slots; ++s) {
    if (count[s] <= k + 1) continue;
    std::vector<std::pair<uint64_t, uint32_t>> members;
    for (uint32_t i : by_slot[s]) members.emplace_back(Mix64(position[i] ^ 0x9e3779b97f4a7c15ULL), i);
    std::nth_element(members.begin(), members.begin() + k + 1, members.end());
    for (size_t m = k + 1; m < members.size(); ++m) {
      const uint32_t i = members[m].second;
      uint32_t best = s, best_count = UINT32_MAX;
      for (uint32_t a = 0; a < 6; ++a) {
        const uint32_t alt = slot_of(Mix64(position[i] ^ (0xc2b2ae3d27d4eb4fULL * (a + 1))));
        if (count[alt] < best_count) {
          best = alt;
          best_count = count[alt];
        }
      }
      if (best_count < k) final_slot[i] = best;
    }
  }
  std::vector<uint32_t> out;
  for (uint32_t step = 0; step < slots && out.empty(); ++step)
    for (uint32_t i = 0; i < n; ++i)
      if (final_slot[i] == (client % slots + step) % slots) out.push_back(i);
  return out;
}

struct Figures {
  int conn_min = 0, conn_max = 0, empty = 0;
  double calls_ratio = 0;
  size_t subset_min = 0, subset_max = 0;
  double churn_mean = 0, had_mean = 0;
  int churn_max = 0;
  double churn_ratio_max = 0;  // worst trial: opened / the replaced pod's connections
};

std::vector<std::vector<uint64_t>> AssignAll(const Assign& assign, const std::vector<uint64_t>& pods,
                                             const std::vector<uint64_t>& clients, uint32_t k) {
  std::vector<std::vector<uint64_t>> out(clients.size());
  for (size_t c = 0; c < clients.size(); ++c)
    for (uint32_t i : assign(pods, clients[c], k)) out[c].push_back(pods[i]);
  return out;
}

Figures Measure(const Assign& assign, const Shares& shares,
                const std::vector<uint64_t>& clients, size_t n, uint32_t k, int trials,
                std::mt19937_64& rng) {
  std::vector<uint64_t> pods(n);
  for (auto& p : pods) p = SubsetKeyHash("pod-" + std::to_string(rng()), "");
  auto subsets = AssignAll(assign, pods, clients, k);
  std::vector<int> conn(n, 0);
  std::vector<double> calls(n, 0);
  std::vector<uint32_t> index_of;
  std::unordered_map<uint64_t, uint32_t> position;
  for (uint32_t i = 0; i < n; ++i) position[pods[i]] = i;
  Figures f;
  f.subset_min = SIZE_MAX;
  for (const auto& s : subsets) {
    f.subset_min = std::min(f.subset_min, s.size());
    f.subset_max = std::max(f.subset_max, s.size());
    for (uint64_t p : s) {
      ++conn[position[p]];
      if (!shares) calls[position[p]] += 1.0 / static_cast<double>(s.size());
    }
  }
  if (shares) {
    for (uint64_t client : clients)
      for (const SubsetMember& m : shares(pods, client, k)) calls[m.position] += m.share;
  }
  f.conn_min = *std::min_element(conn.begin(), conn.end());
  f.conn_max = *std::max_element(conn.begin(), conn.end());
  double calls_min = 1e300, calls_max = 0;
  for (size_t i = 0; i < n; ++i) {
    f.empty += conn[i] == 0;
    if (conn[i] == 0) continue;
    calls_min = std::min(calls_min, calls[i]);
    calls_max = std::max(calls_max, calls[i]);
  }
  f.calls_ratio = calls_max / calls_min;
  // Churn: one pod replaced by a newly named one, as a Deployment's rolling update does it: the
  // old pod leaves the eligible set (it drains), then the new one becomes ready. A connection
  // that a client drops at the first step and takes back at the second counts as opened.
  auto opened_between = [&](const std::vector<std::vector<uint64_t>>& from,
                            const std::vector<std::vector<uint64_t>>& to) {
    int opened = 0;
    for (size_t c = 0; c < clients.size(); ++c) {
      std::unordered_set<uint64_t> before(from[c].begin(), from[c].end());
      for (uint64_t p : to[c]) opened += !before.contains(p);
    }
    return opened;
  };
  double opened_sum = 0, had_sum = 0;
  for (int t = 0; t < trials; ++t) {
    const size_t victim = rng() % n;
    std::vector<uint64_t> without = pods;
    without.erase(without.begin() + static_cast<std::ptrdiff_t>(victim));
    std::vector<uint64_t> next = without;
    next.push_back(SubsetKeyHash("pod-" + std::to_string(rng()), ""));
    auto middle = AssignAll(assign, without, clients, k);
    auto after = AssignAll(assign, next, clients, k);
    const int opened = opened_between(subsets, middle) + opened_between(middle, after);
    opened_sum += opened;
    had_sum += conn[victim];
    f.churn_max = std::max(f.churn_max, opened);
    if (conn[victim] > 0)
      f.churn_ratio_max = std::max(f.churn_ratio_max, opened / static_cast<double>(conn[victim]));
  }
  f.churn_mean = opened_sum / trials;
  f.had_mean = had_sum / trials;
  return f;
}

int Flag(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int clients_n = Flag(argc, argv, "--clients", 1000);
  const int pods_n = Flag(argc, argv, "--pods", 5000);
  const uint32_t k = static_cast<uint32_t>(Flag(argc, argv, "--subset", 25));
  const int trials = Flag(argc, argv, "--trials", 200);
  std::mt19937_64 rng(static_cast<uint64_t>(Flag(argc, argv, "--seed", 20261130)));

  // Clients as a StatefulSet names them (client-0 ... client-999), and as a Deployment does.
  std::vector<uint64_t> ordinal_clients, named_clients;
  for (int c = 0; c < clients_n; ++c) {
    ordinal_clients.push_back(SubsetClientFromId("client-" + std::to_string(c)).index);
    named_clients.push_back(SubsetClientFromId("web-7d9f8-" + std::to_string(rng())).index);
  }

  std::printf("subsetting: %d clients, %d pods, subset %u (%.1f connections per pod on average); "
              "churn over %d single-pod replacements\n\n",
              clients_n, pods_n, k, double(clients_n) * k / pods_n, trials);
  std::printf("%-44s %9s %6s %6s %9s %7s %12s %13s %11s\n", "algorithm", "conn/pod", "ratio",
              "empty", "calls", "subset", "replace:", "new conns", "worst");
  std::printf("%-44s %9s %6s %6s %9s %7s %12s %13s %11s\n", "", "min..max", "", "pods",
              "max/min", "sizes", "pod had", "mean (max)", "new/had");
  struct Row {
    const char* name;
    Assign assign;
    Shares shares;
    const std::vector<uint64_t>* clients;
    int trials;
  };
  const std::vector<Row> rows = {
      {"podlb: arcs, borrowing, shares (ordinal)", Podlb, PodlbShares, &ordinal_clients, trials},
      {"bounded overflow (podlb until 2026-12-01)", BoundedOverflow, nullptr, &ordinal_clients,
       trials},
      {"podlb, calls spread evenly (no shares)", Podlb, nullptr, &ordinal_clients, trials},
      {"podlb, ids without ordinal (Deployment)", Podlb, PodlbShares, &named_clients, trials},
      {"rounds of hashed slots, no correction", Arcs, nullptr, &ordinal_clients, trials},
      {"deterministic (SRE book)", Deterministic, nullptr, &ordinal_clients,
       std::max(1, trials / 10)},
      {"random / rendezvous (gRFC A68)", Random, nullptr, &ordinal_clients,
       std::max(1, trials / 20)},
  };
  const size_t first_rows = static_cast<size_t>(Flag(argc, argv, "--rows", 99));
  for (size_t r = 0; r < std::min(first_rows, rows.size()); ++r) {
    const Row& row = rows[r];
    // Every row sees the same pod set and the same replacements (paired comparison).
    std::mt19937_64 row_rng = rng;
    Figures f = Measure(row.assign, row.shares, *row.clients, static_cast<size_t>(pods_n), k,
                        row.trials, row_rng);
    char conn[32], subset[32], churn[32];
    std::snprintf(conn, sizeof conn, "%d..%d", f.conn_min, f.conn_max);
    std::snprintf(subset, sizeof subset, "%zu..%zu", f.subset_min, f.subset_max);
    std::snprintf(churn, sizeof churn, "%.1f (%d)", f.churn_mean, f.churn_max);
    std::printf("%-44s %9s %6s %6d %9.2f %7s %12.1f %13s %10.1fx\n", row.name, conn,
                f.conn_min ? std::to_string(double(f.conn_max) / f.conn_min).substr(0, 4).c_str()
                           : "inf",
                f.empty, f.calls_ratio, subset, f.had_mean, churn, f.churn_ratio_max);
    std::fflush(stdout);
  }
  // What one client pays per endpoint-set change: its subset alone, and with shares (a pass
  // over the endpoints per earlier round; the fleet's last client has the most).
  {
    std::vector<uint64_t> pods(static_cast<size_t>(pods_n));
    for (auto& p : pods) p = SubsetKeyHash("pod-" + std::to_string(rng()), "");
    const uint64_t last = ordinal_clients.back();
    auto time_us = [&](auto&& fn) {
      constexpr int kRuns = 20;
      const auto start = std::chrono::steady_clock::now();
      size_t sink = 0;
      for (int i = 0; i < kRuns; ++i) sink += fn().size();
      const auto end = std::chrono::steady_clock::now();
      if (sink == 0) std::printf("(empty)\n");
      return std::chrono::duration<double, std::micro>(end - start).count() / kRuns;
    };
    std::printf("\nper client and endpoint-set change (client %llu, round %llu): ChooseSubset %.0f us, "
                "ChooseWeightedSubset %.0f us\n",
                static_cast<unsigned long long>(last),
                static_cast<unsigned long long>(last / SubsetSlots(pods.size(), k)),
                time_us([&] { return ChooseSubset(pods, last, k); }),
                time_us([&] { return ChooseWeightedSubset(pods, last, k); }));
  }
  std::printf("\ntargets (issue #12): conn/pod max/min <= 2 with no empty pod; calls max/min <= 1.3;"
              " new connections per replacement about the pod's own (~%.0f), at most twice.\n",
              double(clients_n) * k / pods_n);
  return 0;
}
