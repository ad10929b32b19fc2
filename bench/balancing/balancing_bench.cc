// The balancing core's cost on the data path: one pick (load the current snapshot, ask the
// policy) for every policy at 3, 100 and 5,000 endpoints, with the endpoints' stats warm; and
// the memory the balancing state holds per endpoint; and the cost of applying a slice change,
// with and without subsetting.
//   build/bench/balancing/balancing_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <malloc.h>

#include <random>
#include <string>
#include <vector>

#include "balancing/balancer.h"
#include "benchmark/benchmark.h"
#include "core/hash.h"

namespace podlb::balancing {
namespace {

constexpr PolicyKind kPolicies[] = {PolicyKind::kRoundRobin, PolicyKind::kLeastRequest,
                                    PolicyKind::kPeakEwma, PolicyKind::kRingHash};

EndpointSetConstSharedPtr Endpoints(int n) {
  std::vector<Endpoint> endpoints;
  for (int i = 0; i < n; ++i) {
    endpoints.push_back(Endpoint{.address = "10." + std::to_string(i / 65536) + "." +
                                            std::to_string(i / 256 % 256) + "." +
                                            std::to_string(i % 256),
                                 .port = 8080,
                                 .pod_name = "pod-" + std::to_string(i),
                                 .zone = "a",
                                 .ready = true,
                                 .serving = true});
  }
  return std::make_shared<const EndpointSet>(ServiceKey{"default", "bench", "grpc"}, 1,
                                             std::move(endpoints));
}

std::unique_ptr<Balancer> Make(PolicyKind policy, int n) {
  ServicePolicy defaults = DataPathDefaults();
  defaults.lb_policy = policy;
  auto balancer = std::make_unique<Balancer>(ServiceKey{"default", "bench", "grpc"},
                                             BalancerOptions{.defaults = defaults});
  balancer->Update(Endpoints(n), MonotonicNanos());
  // Warm stats: every endpoint has a latency estimate and some calls in flight.
  auto snapshot = balancer->Current(MonotonicNanos());
  std::mt19937_64 rng(1);
  for (const BalancedEndpoint& e : snapshot->table->endpoints) {
    e.stats->CallStarted();
    e.stats->CallFinished(false, 1'000'000 + static_cast<int64_t>(rng() % 500'000),
                          MonotonicNanos());
    if (rng() % 2) e.stats->CallStarted();
  }
  return balancer;
}

// range(0): policy (0 round_robin, 1 least_request, 2 peak_ewma, 3 ring_hash); range(1): endpoints.
void BM_Pick(benchmark::State& state) {
  const PolicyKind policy = kPolicies[state.range(0)];
  auto balancer = Make(policy, static_cast<int>(state.range(1)));
  uint64_t random = 0x9e3779b97f4a7c15ULL;
  int64_t now = MonotonicNanos();
  uint64_t n = 0;
  for (auto _ : state) {
    // The data path reads the clock once per call anyway; advance a simulated one here.
    now += 1000;
    random = Mix64(random);
    BalancerSnapshotConstSharedPtr snapshot = balancer->Current(now);
    PickArgs args{.now_nanos = now, .random = random};
    if (policy == PolicyKind::kRingHash) {
      args.has_hash = true;
      args.hash = random;
    }
    benchmark::DoNotOptimize(snapshot->Pick(args));
    ++n;
  }
  state.SetLabel(std::string(ToString(policy)));
  state.counters["endpoints"] = static_cast<double>(state.range(1));
}
BENCHMARK(BM_Pick)->ArgsProduct({{0, 1, 2, 3}, {3, 100, 5000}})->ArgNames({"policy", "endpoints"});

// A finished call recorded into the endpoint's stats (peak-EWMA update, failure window).
void BM_RecordCall(benchmark::State& state) {
  auto balancer = Make(PolicyKind::kPeakEwma, 3);
  auto snapshot = balancer->Current(MonotonicNanos());
  EndpointStats& stats = *snapshot->table->endpoints[0].stats;
  int64_t now = MonotonicNanos();
  for (auto _ : state) {
    now += 1000;
    stats.CallStarted();
    balancer->RecordCall(stats, false, 1'000'000, now);
  }
}
BENCHMARK(BM_RecordCall);

// Heap held by one Service's balancing state per endpoint (table entry, stats, candidate, the
// policy's picker), at 5,000 endpoints.
void BM_MemoryPerEndpoint(benchmark::State& state) {
  const PolicyKind policy = kPolicies[state.range(0)];
  for (auto _ : state) {
    const size_t before = mallinfo2().uordblks;
    auto balancer = Make(policy, 5000);
    const size_t after = mallinfo2().uordblks;
    state.counters["bytes_per_endpoint"] = static_cast<double>(after - before) / 5000.0;
    state.SetLabel(std::string(ToString(policy)));
  }
}
BENCHMARK(BM_MemoryPerEndpoint)->DenseRange(0, 3)->ArgName("policy")->Iterations(1);

// Applying one slice change (one pod replaced) to a Service of range(0) endpoints: the whole
// Update on the discovery thread (table, stats carried over, picker), without and with subsets
// of 25 (range(1)), which adds choosing the subset among every endpoint.
void BM_UpdateOnePodReplaced(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  ServicePolicy defaults = DataPathDefaults();
  defaults.subset_size = static_cast<uint32_t>(state.range(1));
  Balancer balancer(ServiceKey{"default", "bench", "grpc"},
                    BalancerOptions{.defaults = defaults, .client_id = "client-7"});
  EndpointSetConstSharedPtr sets[2] = {Endpoints(n), nullptr};
  std::vector<Endpoint> replaced = sets[0]->endpoints();
  replaced[static_cast<size_t>(n / 2)].pod_name = "pod-replacement";
  replaced[static_cast<size_t>(n / 2)].address = "10.255.255.255";
  sets[1] = std::make_shared<const EndpointSet>(ServiceKey{"default", "bench", "grpc"}, 2,
                                                std::move(replaced));
  int which = 0;
  for (auto _ : state) {
    balancer.Update(sets[which], MonotonicNanos());
    which ^= 1;
  }
  state.counters["table"] =
      static_cast<double>(balancer.Current(MonotonicNanos())->table->endpoints.size());
}
BENCHMARK(BM_UpdateOnePodReplaced)
    ->ArgsProduct({{50, 5000}, {0, 25}})
    ->ArgNames({"endpoints", "subset"})
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace podlb::balancing

BENCHMARK_MAIN();
