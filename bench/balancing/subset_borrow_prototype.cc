// Prototype, not the product: the variants tried on the way to src/balancing/subset.cc's
// "arcs with borrowing and shares", at fleet level (every client's subset computed at once per
// pod set, so a sweep over variants takes seconds). Rounds of hashed arcs as in subset.cc; then,
// by flags: an arc below --min x subset borrows the nearest outside pods (--steal: they leave
// their home arc's client, keeping connections exact, unless that arc would fall below --min);
// --overlap: every client also takes the pods within that many arc widths of its arc; call
// shares solved per round by --sweeps passes of water-filling over the earlier rounds' loads
// (--memoryless: over the round alone), each member keeping --floor of an even share. Prints
// per pod set (--seed-lo..--seed-hi) connections, calls max/min, subset sizes, and the
// connections a two-step replacement opens (mean and max over --trials). The product's lending
// (arcs above 1.3 x) is not modelled here; subset_sim measures the product itself.
//
//   build/bench/balancing/subset_borrow_prototype --min 0.7 --floor 0.25 --sweeps 4 --trials 200
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/hash.h"

using podlb::Mix64;

struct Params {
  double min_frac = 0;   // a client's set has at least ceil(min_frac * K) pods (borrowing)
  double overlap = 0;    // every client also takes pods within overlap arc-widths of its arc
  int sweeps = 8;        // block coordinate descent sweeps of the round's weights
  double floor = 0;      // every member's share is at least floor / |set|
  bool weights = true;
  int borrow_cap = 1 << 30;  // at most this many borrowed pods
  bool steal = false;
  bool memoryless = false;  // weights balance the round alone, not the earlier rounds' loads   // a borrowed pod leaves its home arc's set (connections stay exact)
};

struct Layout {
  // members[s]: pod indices of slot s's set (arc + borrowed + overlap).
  std::vector<std::vector<uint32_t>> members;
};

uint32_t SlotOf(uint64_t h, uint32_t slots) {
  return static_cast<uint32_t>((static_cast<unsigned __int128>(h) * slots) >> 64);
}

Layout MakeLayout(const std::vector<uint64_t>& pods, uint64_t round, uint32_t S, uint32_t K,
                  const Params& p) {
  const size_t n = pods.size();
  const uint64_t seed = Mix64(round ^ 0x5ab5e7c0ffee1234ULL);
  std::vector<std::pair<uint64_t, uint32_t>> order(n);
  for (uint32_t i = 0; i < n; ++i) order[i] = {Mix64(pods[i] ^ seed), i};
  std::sort(order.begin(), order.end());
  std::vector<uint32_t> begin(S + 1, 0);
  {
    uint32_t j = 0;
    for (uint32_t s = 0; s < S; ++s) {
      begin[s] = j;
      while (j < n && SlotOf(order[j].first, S) == s) ++j;
    }
    begin[S] = static_cast<uint32_t>(n);
  }
  Layout out;
  out.members.resize(S);
  const uint32_t m = static_cast<uint32_t>(std::ceil(p.min_frac * K - 1e-9));
  const long double width = 18446744073709551616.0L / S;  // 2^64 / S
  auto pos = [&](int64_t j) -> long double {              // position of order[j mod n], unwrapped
    int64_t w = ((j % (int64_t)n) + (int64_t)n) % (int64_t)n;
    long double x = order[w].first;
    long double shift = (long double)((j - w) / (int64_t)n) * 18446744073709551616.0L;
    return x + shift;
  };
  std::vector<uint32_t> count(S);
  for (uint32_t s = 0; s < S; ++s) count[s] = begin[s + 1] - begin[s];
  auto home_of = [&](int64_t j) { return SlotOf(order[((j % (int64_t)n) + n) % n].first, S); };
  std::vector<char> taken(n, 0);  // by order index
  std::vector<uint32_t> lent(S, 0);
  std::vector<std::vector<uint32_t>> extra(S);
  for (uint32_t s = 0; s < S; ++s) {
    auto& set = extra[s];
    const int64_t b = begin[s], e = begin[s + 1];
    const long double lo = width * s, hi = width * (s + 1);
    const long double ov = width * p.overlap;
    int64_t right = e, left = b - 1;
    // Fixed overlap.
    while (right - left - 1 < (int64_t)n && pos(right) < hi + ov) set.push_back(order[((right++ % (int64_t)n) + n) % n].second);
    while (right - left - 1 < (int64_t)n && pos(left) >= lo - ov) set.push_back(order[((left-- % (int64_t)n) + n) % n].second);
    // Borrow up to m, nearest to the arc first.
    uint32_t have = count[s] + set.size(), borrowed = 0;
    while (have < m && right - left - 1 < (int64_t)n && borrowed < (uint32_t)p.borrow_cap) {
      const long double dr = pos(right) - hi, dl = lo - pos(left);
      const int64_t j = dr <= dl ? right++ : left--;
      const int64_t w = ((j % (int64_t)n) + n) % n;
      set.push_back(order[w].second);
      if (p.steal && !taken[w] && lent[home_of(j)] + m < count[home_of(j)]) {
        taken[w] = 1;
        ++lent[home_of(j)];
      }
      ++have;
      ++borrowed;
    }
  }
  for (uint32_t s = 0; s < S; ++s) {
    auto& set = out.members[s];
    for (uint32_t j = begin[s]; j < begin[s + 1]; ++j)
      if (!taken[j]) set.push_back(order[j].second);
    set.insert(set.end(), extra[s].begin(), extra[s].end());
  }
  return out;
}

// Water-fills `budget` over `set` above base loads; writes shares into w.
void WaterFill(const std::vector<uint32_t>& set, const std::vector<double>& base, double budget,
               std::vector<double>& w) {
  std::vector<double> lv(set.size());
  for (size_t i = 0; i < set.size(); ++i) lv[i] = base[set[i]];
  std::sort(lv.begin(), lv.end());
  double prefix = 0, level = 0;
  for (size_t i = 0; i < lv.size(); ++i) {
    prefix += lv[i];
    level = (budget + prefix) / (i + 1);
    if (i + 1 == lv.size() || level <= lv[i + 1]) break;
  }
  w.resize(set.size());
  for (size_t i = 0; i < set.size(); ++i) w[i] = std::max(0.0, level - base[set[i]]);
}

struct Fleet {
  std::vector<std::vector<uint32_t>> subset;   // per client
  std::vector<std::vector<double>> share;      // per client, aligned
};

Fleet Assign(const std::vector<uint64_t>& pods, uint32_t clients, uint32_t K, const Params& p,
             bool with_weights) {
  const size_t n = pods.size();
  const uint32_t S = std::max<uint32_t>(1, (n + K / 2) / K);
  Fleet f;
  f.subset.resize(clients);
  f.share.resize(clients);
  std::vector<double> load(n, 0.0);
  const uint32_t rounds = (clients + S - 1) / S;
  for (uint32_t r = 0; r < rounds; ++r) {
    Layout lay = MakeLayout(pods, r, S, K, p);
    std::vector<std::vector<double>> w(S);
    if (with_weights && p.weights) {
      std::vector<double> cur = p.memoryless ? std::vector<double>(n, 0.0) : load;  // prior + this round's current contributions
      for (int sweep = 0; sweep < p.sweeps; ++sweep) {
        for (uint32_t s = 0; s < S; ++s) {
          const auto& set = lay.members[s];
          if (set.empty()) continue;
          if (!w[s].empty())
            for (size_t i = 0; i < set.size(); ++i) cur[set[i]] -= w[s][i];
          const double fl = p.floor / set.size();
          for (uint32_t q : set) cur[q] += fl;
          WaterFill(set, cur, 1.0 - p.floor, w[s]);
          for (size_t i = 0; i < set.size(); ++i) {
            w[s][i] += fl;
            cur[set[i]] += w[s][i] - fl;
          }
        }
      }
    } else {
      for (uint32_t s = 0; s < S; ++s)
        w[s].assign(lay.members[s].size(), 1.0 / std::max<size_t>(1, lay.members[s].size()));
    }
    for (uint32_t s = 0; s < S && r * S + s < clients; ++s) {
      const uint32_t c = r * S + s;
      f.subset[c] = lay.members[s];
      f.share[c] = w[s];
      for (size_t i = 0; i < lay.members[s].size(); ++i) load[lay.members[s][i]] += w[s][i];
    }
  }
  return f;
}

int main(int argc, char** argv) {
  auto flag = [&](const char* name, double fallback) {
    for (int i = 1; i + 1 < argc; ++i)
      if (!std::strcmp(argv[i], name)) return std::atof(argv[i + 1]);
    return fallback;
  };
  const uint32_t C = flag("--clients", 1000), N = flag("--pods", 5000), K = flag("--subset", 25);
  const int trials = flag("--trials", 200);
  const int seed_lo = flag("--seed-lo", 1), seed_hi = flag("--seed-hi", 6);
  Params p;
  p.min_frac = flag("--min", 0);
  p.overlap = flag("--overlap", 0);
  p.sweeps = flag("--sweeps", 8);
  p.floor = flag("--floor", 0);
  p.weights = flag("--weights", 1) != 0;
  p.borrow_cap = flag("--cap", 1 << 30);
  p.steal = flag("--steal", 0) != 0;
  p.memoryless = flag("--memoryless", 0) != 0;
  std::printf("C=%u N=%u K=%u min=%.2f overlap=%.2f sweeps=%d floor=%.2f weights=%d\n", C, N, K,
              p.min_frac, p.overlap, p.sweeps, p.floor, (int)p.weights);
  std::printf("%5s %8s %8s %8s %8s %10s %10s %8s\n", "seed", "conn", "calls", "sizes", "minshr", "churn mean",
              "churn max", "had");
  double worst_calls = 0, all_mean = 0;
  int all_max = 0;
  for (int seed = seed_lo; seed <= seed_hi; ++seed) {
    std::mt19937_64 rng(seed * 7919 + 13);
    std::vector<uint64_t> pods(N);
    for (auto& x : pods) x = podlb::HashKey("pod-" + std::to_string(rng()));
    Fleet f = Assign(pods, C, K, p, true);
    std::vector<int> conn(N, 0);
    std::vector<double> calls(N, 0);
    size_t smin = SIZE_MAX, smax = 0;
    double minshare = 1e9;
    for (uint32_t c = 0; c < C; ++c) {
      smin = std::min(smin, f.subset[c].size());
      smax = std::max(smax, f.subset[c].size());
      for (size_t i = 0; i < f.subset[c].size(); ++i) {
        ++conn[f.subset[c][i]];
        calls[f.subset[c][i]] += f.share[c][i];
        minshare = std::min(minshare, f.share[c][i] * f.subset[c].size());
      }
    }
    const int cmin = *std::min_element(conn.begin(), conn.end());
    const int cmax = *std::max_element(conn.begin(), conn.end());
    const double ratio = *std::max_element(calls.begin(), calls.end()) /
                         *std::min_element(calls.begin(), calls.end());
    worst_calls = std::max(worst_calls, ratio);
    // Churn.
    auto keysets = [&](const std::vector<uint64_t>& ps) {
      Fleet g = Assign(ps, C, K, p, false);
      std::vector<std::vector<uint64_t>> out(C);
      for (uint32_t c = 0; c < C; ++c) {
        for (uint32_t i : g.subset[c]) out[c].push_back(ps[i]);
        std::sort(out[c].begin(), out[c].end());
      }
      return out;
    };
    auto opened = [&](const std::vector<std::vector<uint64_t>>& a,
                      const std::vector<std::vector<uint64_t>>& b) {
      int o = 0;
      for (uint32_t c = 0; c < C; ++c) {
        std::vector<uint64_t> d;
        std::set_difference(b[c].begin(), b[c].end(), a[c].begin(), a[c].end(),
                            std::back_inserter(d));
        o += d.size();
      }
      return o;
    };
    auto base = keysets(pods);
    double sum = 0, had = 0;
    int mx = 0;
    for (int t = 0; t < trials; ++t) {
      const size_t victim = rng() % N;
      std::vector<uint64_t> without = pods;
      without.erase(without.begin() + victim);
      std::vector<uint64_t> next = without;
      next.push_back(podlb::HashKey("pod-" + std::to_string(rng())));
      auto mid = keysets(without);
      auto after = keysets(next);
      const int o = opened(base, mid) + opened(mid, after);
      sum += o;
      had += conn[victim];
      mx = std::max(mx, o);
    }
    all_mean += sum / trials;
    all_max = std::max(all_max, mx);
    char cs[32], ss[32];
    std::snprintf(cs, sizeof cs, "%d..%d", cmin, cmax);
    std::snprintf(ss, sizeof ss, "%zu..%zu", smin, smax);
    std::printf("%5d %8s %8.3f %8s %8.2f %10.2f %10d %8.2f\n", seed, cs, ratio, ss, minshare,
                sum / trials, mx, had / trials);
    std::fflush(stdout);
  }
  std::printf("worst calls %.3f, churn mean %.2f, churn max %d\n", worst_calls,
              all_mean / (seed_hi - seed_lo + 1), all_max);
}
