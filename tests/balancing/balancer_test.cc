// The balancing core without sockets: a simulated clock and latencies, a seeded RNG, and
// statistical assertions on where calls go.
#include "balancing/balancer.h"

#include <map>
#include <random>
#include <set>

#include "balancing/retry_budget.h"
#include "core/hash.h"
#include "gtest/gtest.h"

namespace podlb::balancing {
namespace {

constexpr int64_t kMs = 1'000'000;
constexpr int64_t kSecond = 1'000 * kMs;

Endpoint Pod(int i, std::string zone = "a", uint32_t weight = 1) {
  return Endpoint{.address = "10.0.0." + std::to_string(i),
                  .port = 8080,
                  .pod_name = "pod-" + std::to_string(i),
                  .zone = std::move(zone),
                  .ready = true,
                  .serving = true,
                  .weight = weight};
}

EndpointSetConstSharedPtr Set(std::vector<Endpoint> endpoints,
                              std::map<std::string, std::string> annotations = {},
                              uint64_t version = 1) {
  return std::make_shared<const EndpointSet>(ServiceKey{"default", "greeter", "grpc"}, version,
                                             std::move(endpoints), std::move(annotations));
}

ServicePolicy With(PolicyKind kind, bool outlier = true) {
  ServicePolicy policy = DataPathDefaults();
  policy.lb_policy = kind;
  policy.outlier.enabled = outlier;
  return policy;
}

// Drives a balancer like a data path would: pick, then record the call's outcome.
class Driver {
 public:
  explicit Driver(Balancer& balancer, uint64_t seed = 42) : balancer_(balancer), rng_(seed) {}

  uint32_t Pick(int64_t now, const PickArgs& extra = {}) {
    snapshot_ = balancer_.Current(now);
    PickArgs args = extra;
    args.now_nanos = now;
    args.random = rng_();
    return snapshot_->Pick(args);
  }
  const BalancedEndpoint& Endpoint(uint32_t index) const { return snapshot_->at(index); }
  std::string PodOf(uint32_t index) const { return snapshot_->at(index).endpoint.pod_name; }

  // One sequential call at `now` whose latency and failure `behaviour(pod)` decides.
  template <typename Behaviour>
  std::string Call(int64_t now, Behaviour behaviour) {
    uint32_t index = Pick(now);
    EXPECT_NE(index, kNoEndpoint);
    const BalancedEndpoint& e = Endpoint(index);
    auto [latency, failed] = behaviour(e.endpoint.pod_name);
    e.stats->CallStarted();
    balancer_.RecordCall(*e.stats, failed, latency, now + latency);
    return e.endpoint.pod_name;
  }

 private:
  Balancer& balancer_;
  std::mt19937_64 rng_;
  BalancerSnapshotConstSharedPtr snapshot_;
};

std::pair<int64_t, bool> Healthy(const std::string&) { return {1 * kMs, false}; }

TEST(PeakEwmaTest, SlowPodGetsAlmostNoCallsAtLowConcurrency) {
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = With(PolicyKind::kPeakEwma)});
  balancer.Update(Set({Pod(1), Pod(2), Pod(3)}), 0);
  Driver driver(balancer);
  std::mt19937_64 jitter(7);
  std::map<std::string, int> share;
  int64_t now = 0;
  for (int i = 0; i < 6000; ++i, now += 5 * kMs) {  // 200 calls/s, one at a time
    std::string pod = driver.Call(now, [&](const std::string& p) {
      int64_t base = 1 * kMs + static_cast<int64_t>(jitter() % 500'000);  // 1-1.5 ms
      return std::pair<int64_t, bool>{p == "pod-2" ? base + 25 * kMs : base, false};
    });
    if (i >= 400) ++share[pod];  // from 2 s on
  }
  const double slow = share["pod-2"] / 5600.0;
  EXPECT_LT(slow, 0.05) << "slow pod share " << slow;
  // The healthy two share the rest evenly.
  EXPECT_NEAR(share["pod-1"] / 5600.0, share["pod-3"] / 5600.0, 0.1);
}

TEST(PeakEwmaTest, EqualPodsShareEvenlyDespiteNoise) {
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = With(PolicyKind::kPeakEwma)});
  balancer.Update(Set({Pod(1), Pod(2), Pod(3)}), 0);
  Driver driver(balancer);
  std::mt19937_64 jitter(11);
  std::map<std::string, int> share;
  int64_t now = 0;
  for (int i = 0; i < 3000; ++i, now += 5 * kMs) {
    ++share[driver.Call(now, [&](const std::string&) {
      return std::pair<int64_t, bool>{1 * kMs + static_cast<int64_t>(jitter() % 300'000), false};
    })];
  }
  int lo = INT32_MAX, hi = 0;
  for (auto& [pod, n] : share) lo = std::min(lo, n), hi = std::max(hi, n);
  EXPECT_EQ(share.size(), 3u);
  EXPECT_LE(static_cast<double>(hi) / lo, 1.2);
}

TEST(PeakEwmaTest, FastFailingPodDoesNotAttractCalls) {
  // No ejection here: the failure penalty alone must keep a pod that fails in 0.1 ms away.
  Balancer balancer({"default", "greeter", "grpc"},
                    {.defaults = With(PolicyKind::kPeakEwma, /*outlier=*/false)});
  balancer.Update(Set({Pod(1), Pod(2), Pod(3)}), 0);
  Driver driver(balancer);
  std::mt19937_64 coin(3);
  int64_t now = 0;
  int failures = 0;
  for (int i = 0; i < 4000; ++i, now += 5 * kMs) {
    driver.Call(now, [&](const std::string& p) {
      if (p == "pod-3" && coin() % 2 == 0) {
        ++failures;
        return std::pair<int64_t, bool>{100'000, true};
      }
      return Healthy(p);
    });
  }
  EXPECT_LT(failures, 4000 / 100) << "a fast-failing pod must not draw calls";
}

TEST(PeakEwmaTest, PendingCallsRaiseTheCost) {
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = With(PolicyKind::kPeakEwma)});
  balancer.Update(Set({Pod(1), Pod(2)}), 0);
  Driver driver(balancer);
  // Warm both to 1 ms, then leave calls stuck on pod-1.
  for (int i = 0; i < 10; ++i) driver.Call(i * kMs, Healthy);
  auto snapshot = balancer.Current(20 * kMs);
  EndpointStats& stuck = *snapshot->at(0).stats;
  for (int i = 0; i < 3; ++i) stuck.CallStarted();
  std::map<std::string, int> share;
  for (int i = 0; i < 100; ++i) ++share[driver.PodOf(driver.Pick(20 * kMs))];
  EXPECT_EQ(share["pod-1"], 0);
}

TEST(PeakEwmaTest, LoadedHealthyPodStillBeatsAnIdleSlowOne) {
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = With(PolicyKind::kPeakEwma)});
  balancer.Update(Set({Pod(1), Pod(2)}), 0);
  auto snapshot = balancer.Current(0);
  EndpointStats& healthy = *snapshot->at(0).stats;
  EndpointStats& slow = *snapshot->at(1).stats;
  healthy.CallStarted();
  healthy.CallFinished(false, 1 * kMs, 0);
  slow.CallStarted();
  slow.CallFinished(false, 26 * kMs, 0);
  // Two calls queued on the healthy pod (cost ~5 ms × 3) still beat the idle slow pod (26 ms).
  healthy.CallStarted();
  healthy.CallStarted();
  Driver driver(balancer);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(driver.PodOf(driver.Pick(kMs)), "pod-1");
  // With eight queued, waiting there would take longer than the slow pod: it takes the overflow.
  for (int i = 0; i < 6; ++i) healthy.CallStarted();
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) seen.insert(driver.PodOf(driver.Pick(kMs)));
  EXPECT_TRUE(seen.count("pod-2"));
}

TEST(LeastRequestTest, FewerCallsInFlightWins) {
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = With(PolicyKind::kLeastRequest)});
  balancer.Update(Set({Pod(1), Pod(2), Pod(3)}), 0);
  Driver driver(balancer);
  auto snapshot = balancer.Current(0);
  snapshot->at(1).stats->CallStarted();
  std::map<std::string, int> share;
  for (int i = 0; i < 300; ++i) ++share[driver.PodOf(driver.Pick(0))];
  EXPECT_EQ(share["pod-2"], 0);
  EXPECT_NEAR(share["pod-1"], 150, 30);
}

// Weights shape the power-of-two pickers too: where the comparison ties (idle pods, equally
// fast), calls go in proportion to weight. Before, least_request gave idle pods equal turns and
// peak_ewma sent every idle tie to the heavier pod.
TEST(LeastRequestTest, IdlePodsTakeCallsInProportionToWeight) {
  for (PolicyKind kind : {PolicyKind::kLeastRequest, PolicyKind::kPeakEwma}) {
    SCOPED_TRACE(std::string(ToString(kind)));
    Balancer balancer({"default", "greeter", "grpc"}, {.defaults = With(kind)});
    balancer.Update(Set({Pod(1, "a", 1), Pod(2, "a", 3), Pod(3, "a", 4)}), 0);
    Driver driver(balancer);
    std::map<std::string, int> share;
    for (int i = 0; i < 800; ++i) ++share[driver.PodOf(driver.Pick(0))];
    EXPECT_EQ(share["pod-1"], 100);
    EXPECT_EQ(share["pod-2"], 300);
    EXPECT_EQ(share["pod-3"], 400);
  }
}

TEST(LeastRequestTest, WeightedPodsBalanceCallsInFlightPerUnitOfWeight) {
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = With(PolicyKind::kLeastRequest)});
  balancer.Update(Set({Pod(1, "a", 1), Pod(2, "a", 4)}), 0);
  Driver driver(balancer);
  // Calls that never end: each pick adds one in flight. Whenever the two are compared, the one
  // with fewer calls per unit of weight wins, so the in-flight counts stay near 1:4.
  auto snapshot = balancer.Current(0);
  for (int i = 0; i < 500; ++i) driver.Endpoint(driver.Pick(0)).stats->CallStarted();
  const int64_t light = snapshot->at(0).stats->in_flight();
  const int64_t heavy = snapshot->at(1).stats->in_flight();
  EXPECT_EQ(light + heavy, 500);
  EXPECT_NEAR(static_cast<double>(heavy) / static_cast<double>(light), 4.0, 0.2);
}

TEST(RoundRobinTest, EvenAndWeighted) {
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = With(PolicyKind::kRoundRobin)});
  balancer.Update(Set({Pod(1, "a", 1), Pod(2, "a", 3)}), 0);
  Driver driver(balancer);
  std::map<std::string, int> share;
  for (int i = 0; i < 400; ++i) ++share[driver.PodOf(driver.Pick(0))];
  EXPECT_EQ(share["pod-1"], 100);
  EXPECT_EQ(share["pod-2"], 300);
  // Smooth: the heavy pod's turns are spread, never four in a row.
  std::string run;
  int longest = 0, current = 0;
  for (int i = 0; i < 40; ++i) {
    std::string pod = driver.PodOf(driver.Pick(0));
    current = pod == run ? current + 1 : 1;
    run = pod;
    longest = std::max(longest, current);
  }
  EXPECT_LE(longest, 3);
}

TEST(RingHashTest, SameKeySamePodAndOnlyTheLeaversKeysMove) {
  std::vector<Endpoint> pods;
  for (int i = 1; i <= 10; ++i) pods.push_back(Pod(i));
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = With(PolicyKind::kRingHash)});
  balancer.Update(Set(pods), 0);
  Driver driver(balancer);
  std::map<int, std::string> before;
  std::map<std::string, int> share;
  for (int key = 0; key < 10000; ++key) {
    PickArgs args{.has_hash = true, .hash = HashKey("user-" + std::to_string(key))};
    before[key] = driver.PodOf(driver.Pick(0, args));
    ++share[before[key]];
    EXPECT_EQ(driver.PodOf(driver.Pick(0, args)), before[key]);
  }
  for (auto& [pod, n] : share) EXPECT_GT(n, 500) << pod;  // no pod starved (ideal 1000)
  pods.erase(pods.begin() + 4);  // pod-5 leaves
  balancer.Update(Set(pods, {}, 2), 0);
  int moved = 0;
  for (int key = 0; key < 10000; ++key) {
    PickArgs args{.has_hash = true, .hash = HashKey("user-" + std::to_string(key))};
    std::string now = driver.PodOf(driver.Pick(0, args));
    if (before[key] != "pod-5") {
      EXPECT_EQ(now, before[key]) << "key " << key << " moved off a pod that stayed";
    } else {
      EXPECT_NE(now, "pod-5");
      ++moved;
    }
  }
  EXPECT_EQ(moved, share["pod-5"]);
}

TEST(OutlierTest, ConsecutiveFailuresEjectAndEjectionGrowsPerRepeat) {
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = With(PolicyKind::kRoundRobin)});
  balancer.Update(Set({Pod(1), Pod(2), Pod(3)}), 0);
  auto snapshot = balancer.Current(0);
  EndpointStats& bad = *snapshot->at(2).stats;
  auto fail = [&](int64_t now) {
    bad.CallStarted();
    balancer.RecordCall(bad, true, kMs, now);
  };
  fail(0);
  fail(1);
  EXPECT_FALSE(bad.Ejected(2));
  fail(2);  // the third in a row
  EXPECT_TRUE(bad.Ejected(3));
  Driver driver(balancer);
  for (int i = 0; i < 50; ++i) EXPECT_NE(driver.PodOf(driver.Pick(kSecond)), "pod-3");
  // Back after the base ejection (5 s)...
  std::set<std::string> seen;
  for (int i = 0; i < 30; ++i) seen.insert(driver.PodOf(driver.Pick(5 * kSecond + kMs)));
  EXPECT_TRUE(seen.count("pod-3"));
  // ...and a second ejection lasts twice as long.
  const int64_t t = 6 * kSecond;
  fail(t), fail(t + 1), fail(t + 2);
  EXPECT_TRUE(bad.Ejected(t + 9 * kSecond));
  EXPECT_FALSE(bad.Ejected(t + 11 * kSecond));
  EXPECT_EQ(balancer.ejections_total(), 2u);
}

TEST(OutlierTest, FailurePercentageEjects) {
  ServicePolicy policy = With(PolicyKind::kRoundRobin);
  policy.outlier.consecutive_failures = 0;  // percentage rule only
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = policy});
  balancer.Update(Set({Pod(1), Pod(2), Pod(3)}), 0);
  EndpointStats& bad = *balancer.Current(0)->at(0).stats;
  for (int i = 0; i < 20 && !bad.Ejected(i * kMs); ++i) {
    bad.CallStarted();
    balancer.RecordCall(bad, i % 2 == 0, kMs, i * kMs);  // 50 % failures
  }
  EXPECT_TRUE(bad.Ejected(30 * kMs));
}

TEST(OutlierTest, NeverMoreThanTheCapEjected) {
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = With(PolicyKind::kRoundRobin)});
  balancer.Update(Set({Pod(1), Pod(2), Pod(3), Pod(4)}), 0);
  auto snapshot = balancer.Current(0);
  for (int pod = 0; pod < 4; ++pod) {
    for (int i = 0; i < 5; ++i) {
      snapshot->at(pod).stats->CallStarted();
      balancer.RecordCall(*snapshot->at(pod).stats, true, kMs, kMs);
    }
  }
  int ejected = 0;
  for (int pod = 0; pod < 4; ++pod) ejected += snapshot->at(pod).stats->Ejected(2 * kMs);
  EXPECT_EQ(ejected, 2);  // 50 % of 4
  EXPECT_EQ(balancer.Current(2 * kMs)->candidates.size(), 2u);
}

TEST(OutlierTest, OffMeansNoEjection) {
  Balancer balancer({"default", "greeter", "grpc"},
                    {.defaults = With(PolicyKind::kRoundRobin, /*outlier=*/false)});
  balancer.Update(Set({Pod(1), Pod(2)}), 0);
  EndpointStats& bad = *balancer.Current(0)->at(0).stats;
  for (int i = 0; i < 50; ++i) {
    bad.CallStarted();
    balancer.RecordCall(bad, true, kMs, i);
  }
  EXPECT_FALSE(bad.Ejected(100));
}

TEST(ZoneTest, LocalZoneFirstThenPanicSpreadsOverAllZones) {
  ServicePolicy policy = With(PolicyKind::kRoundRobin);
  policy.zone_aware = true;
  policy.outlier.max_ejection_percent = 100;
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = policy, .local_zone = "a"});
  balancer.Update(Set({Pod(1, "a"), Pod(2, "a"), Pod(3, "a"), Pod(4, "a"), Pod(5, "b"),
                       Pod(6, "b")}),
                  0);
  Driver driver(balancer);
  for (int i = 0; i < 60; ++i) EXPECT_EQ(driver.Endpoint(driver.Pick(0)).endpoint.zone, "a");
  auto eject = [&](int position) {
    EndpointStats& s = *balancer.Current(0)->at(position).stats;
    for (int i = 0; i < 3; ++i) {
      s.CallStarted();
      balancer.RecordCall(s, true, kMs, kMs);
    }
  };
  eject(0);
  eject(1);  // 2 of 4 local healthy: exactly at the 50 % threshold, still local
  std::set<std::string> zones;
  for (int i = 0; i < 60; ++i) zones.insert(driver.Endpoint(driver.Pick(2 * kMs)).endpoint.zone);
  EXPECT_EQ(zones, std::set<std::string>{"a"});
  eject(2);  // 1 of 4: panic
  zones.clear();
  for (int i = 0; i < 60; ++i) zones.insert(driver.Endpoint(driver.Pick(3 * kMs)).endpoint.zone);
  EXPECT_EQ(zones, (std::set<std::string>{"a", "b"}));
  EXPECT_TRUE(balancer.Current(3 * kMs)->mode.starts_with("all zones (panic"));
}

TEST(ZoneTest, NoLocalEndpointsFailsOverAndAnnotationCanTurnZonesOff) {
  ServicePolicy policy = With(PolicyKind::kRoundRobin);
  policy.zone_aware = true;
  Balancer balancer({"default", "greeter", "grpc"}, {.defaults = policy, .local_zone = "c"});
  balancer.Update(Set({Pod(1, "a"), Pod(2, "b")}), 0);
  EXPECT_EQ(balancer.Current(0)->candidates.size(), 2u);
  Balancer local({"default", "greeter", "grpc"}, {.defaults = policy, .local_zone = "a"});
  local.Update(Set({Pod(1, "a"), Pod(2, "b")}, {{"podlb.io/zone-aware", "false"}}), 0);
  EXPECT_EQ(local.Current(0)->candidates.size(), 2u);
}

TEST(BalancerTest, DrainingTakesNoNewCalls) {
  Balancer balancer({"default", "greeter", "grpc"}, {});
  Endpoint draining = Pod(2);
  draining.ready = false;
  draining.terminating = true;
  balancer.Update(Set({Pod(1), draining}), 0);
  Driver driver(balancer);
  for (int i = 0; i < 50; ++i) EXPECT_EQ(driver.PodOf(driver.Pick(0)), "pod-1");
  draining = Pod(1);
  draining.ready = false;
  draining.terminating = true;
  balancer.Update(Set({draining}, {}, 2), 0);
  EXPECT_EQ(driver.Pick(0), kNoEndpoint);
}

TEST(BalancerTest, StatsSurviveRebuildsForPodsThatStayAndAreDroppedWithThePod) {
  Balancer balancer({"default", "greeter", "grpc"}, {});
  balancer.Update(Set({Pod(1), Pod(2)}), 0);
  std::weak_ptr<EndpointStats> leaving = balancer.Current(0)->at(1).stats;
  std::shared_ptr<EndpointStats> staying = balancer.Current(0)->at(0).stats;
  staying->CallStarted();
  balancer.RecordCall(*staying, false, 3 * kMs, 0);
  balancer.Update(Set({Pod(1), Pod(3)}, {}, 2), 0);
  auto snapshot = balancer.Current(0);
  EXPECT_EQ(snapshot->at(0).stats, staying);
  EXPECT_EQ(staying->calls_total(), 1u);
  EXPECT_TRUE(leaving.expired());
  // The newcomer starts at its peers' average latency, not at zero.
  EXPECT_NEAR(snapshot->at(1).stats->RttEstimate(0), 3.0 * kMs, 1.0);
}

TEST(BalancerTest, AnnotationPicksThePolicyAndMalformedKeepsTheDefault) {
  Balancer balancer({"default", "greeter", "grpc"}, {});
  balancer.Update(Set({Pod(1)}, {{"podlb.io/lb-policy", "ring_hash"}}), 0);
  EXPECT_EQ(balancer.Current(0)->policy.lb_policy, PolicyKind::kRingHash);
  balancer.Update(Set({Pod(1)}, {{"podlb.io/lb-policy", "maglev"}}, 2), 0);
  EXPECT_EQ(balancer.Current(0)->policy.lb_policy, PolicyKind::kPeakEwma);
  ASSERT_EQ(balancer.Current(0)->policy.problems.size(), 1u);
  EXPECT_NE(balancer.Current(0)->policy.problems[0].find("maglev"), std::string::npos);
}

TEST(ServicePolicyTest, EveryMalformedAnnotationFallsBackWithAReason) {
  const std::map<std::string, std::string> bad = {
      {"podlb.io/lb-policy", "fastest"},
      {"podlb.io/hash-header", "Bad Header"},
      {"podlb.io/timeout", "soon"},
      {"podlb.io/retry-on-unavailable", "many"},
      {"podlb.io/zone-aware", "maybe"},
      {"podlb.io/panic-threshold", "150"},
      {"podlb.io/outlier-detection", "sometimes"},
      {"podlb.io/outlier-interval", "-1s"},
      {"podlb.io/outlier-consecutive-failures", "x"},
      {"podlb.io/outlier-failure-percentage", "101"},
      {"podlb.io/outlier-minimum-requests", "0"},
      {"podlb.io/outlier-base-ejection", "0s"},
      {"podlb.io/outlier-max-ejection", "forever"},
      {"podlb.io/outlier-max-ejection-percent", "-5"},
      {"podlb.io/subset-size", "lots"},
  };
  const ServicePolicy defaults = DataPathDefaults();
  ServicePolicy policy = ParseServicePolicy(bad, defaults);
  EXPECT_TRUE(policy.SameSettings(defaults));
  EXPECT_EQ(policy.problems.size(), bad.size());
  for (const auto& [name, value] : bad) {
    bool named = false;
    for (const std::string& p : policy.problems) named |= p.find(name) != std::string::npos;
    EXPECT_TRUE(named) << name << " has no problem line";
  }
}

TEST(ServicePolicyTest, GoodAnnotationsWin) {
  ServicePolicy policy = ParseServicePolicy(
      {{"podlb.io/lb-policy", "LEAST_REQUEST"},
       {"podlb.io/outlier-detection", "false"},
       {"podlb.io/outlier-interval", "1s"},
       {"podlb.io/outlier-consecutive-failures", "7"},
       {"podlb.io/outlier-max-ejection-percent", "20"},
       {"podlb.io/panic-threshold", "30"},
       {"podlb.io/retry-on-unavailable", "true"}},
      DataPathDefaults());
  EXPECT_TRUE(policy.problems.empty());
  EXPECT_EQ(policy.lb_policy, PolicyKind::kLeastRequest);
  EXPECT_FALSE(policy.outlier.enabled);
  EXPECT_EQ(policy.outlier.interval, absl::Seconds(1));
  EXPECT_EQ(policy.outlier.consecutive_failures, 7u);
  EXPECT_EQ(policy.outlier.max_ejection_percent, 20u);
  EXPECT_EQ(policy.panic_threshold_percent, 30u);
  EXPECT_EQ(policy.retries_on_unavailable, 2u);
}

TEST(RetryBudgetTest, BoundedUnderTotalFailure) {
  RetryBudget budget(0.2, 10);
  int64_t now = 0;
  int retries = 0;
  // 1,000 calls/s for 20 s, each failing and asking for a retry.
  for (int i = 0; i < 20000; ++i, now += kMs) {
    budget.OnCall(now);
    retries += budget.TryRetry(now);
  }
  // 20 % of calls plus 10/s, give or take the window's edges.
  EXPECT_LE(retries, 20000 * 0.2 + 10 * 20 + 300);
  EXPECT_GE(retries, 20000 * 0.2 * 0.8);
  EXPECT_GT(budget.exhausted_total(), 0u);
}

TEST(RetryBudgetTest, QuietServiceStillRetries) {
  RetryBudget budget(0.2, 10);
  EXPECT_TRUE(budget.TryRetry(0));  // the floor, with no calls yet
}

}  // namespace
}  // namespace podlb::balancing
