// Subsetting without sockets: the algorithm's balance over a fleet, its stability when pods come
// and go, its determinism, the client ids it accepts, and the Balancer that applies it (what the
// proxy and the library both get). Fleet-scale figures are in bench/balancing/subset_sim.
#include "balancing/subset.h"

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <unordered_map>

#include "balancing/balancer.h"
#include "gtest/gtest.h"

namespace podlb::balancing {
namespace {

std::vector<uint64_t> Pods(size_t n, std::mt19937_64& rng) {
  std::vector<uint64_t> pods;
  for (size_t i = 0; i < n; ++i) pods.push_back(SubsetKeyHash("web-" + std::to_string(rng()), ""));
  return pods;
}

// Client c's subset, as pod keys.
std::set<uint64_t> SubsetOf(const std::vector<uint64_t>& pods, uint64_t client, uint32_t k) {
  std::set<uint64_t> out;
  for (uint32_t i : ChooseSubset(pods, client, k)) out.insert(pods[i]);
  return out;
}

struct Fleet {
  std::vector<std::set<uint64_t>> subsets;
  std::unordered_map<uint64_t, int> connections;  // per pod
  std::unordered_map<uint64_t, double> calls;     // per pod, each client sending 1 spread evenly
};

Fleet Assign(const std::vector<uint64_t>& pods, size_t clients, uint32_t k) {
  Fleet fleet;
  for (uint64_t p : pods) fleet.connections[p] = 0;
  for (size_t c = 0; c < clients; ++c) {
    fleet.subsets.push_back(SubsetOf(pods, c, k));
    for (uint64_t p : fleet.subsets.back()) {
      ++fleet.connections[p];
      fleet.calls[p] += 1.0 / static_cast<double>(fleet.subsets.back().size());
    }
  }
  return fleet;
}

// New (client, pod) pairs in `after` that `before` did not have.
int Opened(const Fleet& before, const Fleet& after) {
  int opened = 0;
  for (size_t c = 0; c < after.subsets.size(); ++c)
    for (uint64_t p : after.subsets[c]) opened += !before.subsets[c].contains(p);
  return opened;
}

TEST(SubsetClientTest, TrailingNumbersAreOrdinalsAndOtherIdsHash) {
  EXPECT_EQ(SubsetClientFromId("client-7").index, 7u);
  EXPECT_TRUE(SubsetClientFromId("client-7").ordinal);
  EXPECT_EQ(SubsetClientFromId("podlb-proxy-12").index, 12u);
  EXPECT_EQ(SubsetClientFromId("web-0").index, 0u);
  EXPECT_EQ(SubsetClientFromId("42").index, 42u);
  EXPECT_TRUE(SubsetClientFromId("42").ordinal);
  // A Deployment's random suffix, leading zeros, numbers too long for a replica count, a
  // number glued to a word, and no id at all: hashed, stable, and different from each other.
  for (const char* id : {"web-7d9f8-x2kq5", "web-007", "web-1234567890", "web7", ""}) {
    SubsetClient client = SubsetClientFromId(id);
    EXPECT_FALSE(client.ordinal) << id;
    EXPECT_EQ(client.index, SubsetClientFromId(id).index) << id;
  }
  EXPECT_NE(SubsetClientFromId("web-a").index, SubsetClientFromId("web-b").index);
}

TEST(SubsetTest, ThousandClientsOfFiveThousandPodsBalanceConnectionsExactlyAndCallsWithinTarget) {
  std::mt19937_64 rng(1);
  const std::vector<uint64_t> pods = Pods(5000, rng);
  const Fleet fleet = Assign(pods, 1000, 25);
  // Whole rounds (1000 clients = 5 rounds of 200 slots): every pod has exactly 5 clients.
  for (const auto& [pod, n] : fleet.connections) ASSERT_EQ(n, 5);
  double lo = 1e9, hi = 0;
  size_t smallest = SIZE_MAX, largest = 0;
  for (const auto& [pod, load] : fleet.calls) {
    lo = std::min(lo, load);
    hi = std::max(hi, load);
  }
  for (const auto& s : fleet.subsets) {
    smallest = std::min(smallest, s.size());
    largest = std::max(largest, s.size());
  }
  // Issue #12's target is 1.3; over different pod sets the algorithm lands between 1.23 and
  // 1.31 (BENCHMARKS.md), without the correction at 2.2.
  EXPECT_LE(hi / lo, 1.35);
  EXPECT_GE(smallest, 25u * 6 / 10);
  EXPECT_LE(largest, 25u * 14 / 10);
}

TEST(SubsetTest, PartialRoundsDifferByOneConnectionAndSmallFleetsCoverEveryPod) {
  std::mt19937_64 rng(2);
  const std::vector<uint64_t> pods = Pods(5000, rng);
  const Fleet fleet = Assign(pods, 1100, 25);  // 5.5 rounds
  for (const auto& [pod, n] : fleet.connections) {
    EXPECT_GE(n, 5);
    EXPECT_LE(n, 6);
  }
  // The sandbox test's shape: 10 clients, 20 pods, subsets of 4 → 2 rounds of 5 slots.
  const std::vector<uint64_t> few = Pods(20, rng);
  const Fleet small = Assign(few, 10, 4);
  for (const auto& [pod, n] : small.connections) EXPECT_EQ(n, 2);
}

TEST(SubsetTest, ReplacingOnePodOpensAFewConnectionsNotAReshuffle) {
  std::mt19937_64 rng(3);
  std::vector<uint64_t> pods = Pods(5000, rng);
  const Fleet before = Assign(pods, 1000, 25);
  int total = 0;
  constexpr int kTrials = 10;
  for (int t = 0; t < kTrials; ++t) {
    std::vector<uint64_t> next = pods;
    next[rng() % next.size()] = SubsetKeyHash("web-new-" + std::to_string(t), "");
    const int opened = Opened(before, Assign(next, 1000, 25));
    // The replaced pod had 5 connections; its replacement needs 5. The lumpiness correction
    // moves a few more pods (BENCHMARKS.md: 12 on average). Deterministic subsetting opens ~300.
    EXPECT_GE(opened, 5);
    EXPECT_LE(opened, 25);
    total += opened;
  }
  EXPECT_LE(total / kTrials, 15);
}

TEST(SubsetTest, ScalingByOnePodMovesLittleUntilTheSlotCountChanges) {
  std::mt19937_64 rng(4);
  std::vector<uint64_t> pods = Pods(5000, rng);
  const Fleet before = Assign(pods, 1000, 25);
  pods.push_back(SubsetKeyHash("web-extra", ""));
  EXPECT_LE(Opened(before, Assign(pods, 1000, 25)), 15);
  pods.pop_back();
  pods.pop_back();
  EXPECT_LE(Opened(before, Assign(pods, 1000, 25)), 15);
}

TEST(SubsetTest, DeterministicAndIndependentOfTheSetsOrder) {
  std::mt19937_64 rng(5);
  std::vector<uint64_t> pods = Pods(1000, rng);
  std::vector<std::set<uint64_t>> first;
  for (uint64_t c = 0; c < 40; ++c) first.push_back(SubsetOf(pods, c, 25));
  std::shuffle(pods.begin(), pods.end(), rng);
  for (uint64_t c = 0; c < 40; ++c) EXPECT_EQ(SubsetOf(pods, c, 25), first[c]) << c;
  // Clients of one round share nothing; a hashed id gets a subset of the usual size too.
  std::set<uint64_t> seen;
  for (uint64_t c = 0; c < 40; ++c)
    for (uint64_t p : first[c]) EXPECT_TRUE(seen.insert(p).second) << "client " << c;
  EXPECT_NEAR(static_cast<double>(SubsetOf(pods, SubsetClientFromId("web-x2kq5").index, 25).size()),
              25, 10);
}

TEST(SubsetTest, OffOrSmallServicesGetEveryEndpoint) {
  std::mt19937_64 rng(6);
  const std::vector<uint64_t> pods = Pods(37, rng);
  EXPECT_EQ(ChooseSubset(pods, 3, 0).size(), 37u);
  EXPECT_EQ(ChooseSubset(pods, 3, 25).size(), 37u);  // fewer than 1.5 subsets' worth
  EXPECT_TRUE(ChooseSubset({}, 3, 25).empty());
  // Every client gets a non-empty subset, even with more slots than a hash spreads evenly.
  const std::vector<uint64_t> tiny = Pods(9, rng);
  for (uint64_t c = 0; c < 50; ++c) EXPECT_FALSE(ChooseSubset(tiny, c, 1).empty()) << c;
}

// --- the Balancer applies it: what the proxy and the library get ---

Endpoint Pod(int i, bool draining = false) {
  return Endpoint{.address = "10.0." + std::to_string(i / 250) + "." + std::to_string(i % 250),
                  .port = 8080,
                  .pod_name = "web-" + std::to_string(i),
                  .ready = !draining,
                  .serving = true,
                  .terminating = draining};
}

EndpointSetConstSharedPtr Set(std::vector<Endpoint> endpoints,
                              std::map<std::string, std::string> annotations, uint64_t version) {
  return std::make_shared<const EndpointSet>(ServiceKey{"default", "web", "grpc"}, version,
                                             std::move(endpoints), std::move(annotations));
}

std::set<std::string> TableOf(Balancer& balancer) {
  std::set<std::string> pods;
  for (const BalancedEndpoint& e : balancer.Current(0)->table->endpoints)
    pods.insert(e.endpoint.pod_name);
  return pods;
}

TEST(BalancerSubsetTest, AnnotationLimitsTheTableToTheSubsetAndKeepsThoseThatStay) {
  int attached = 0;
  BalancerOptions options{.client_id = "client-3"};
  options.attach = [&attached](const BalancedEndpoint&, const ServicePolicy&,
                               const std::shared_ptr<const void>& previous) {
    if (previous) return previous;
    ++attached;  // the adapter would connect here
    return std::shared_ptr<const void>(std::make_shared<int>(0));
  };
  Balancer balancer({"default", "web", "grpc"}, options);
  std::vector<Endpoint> pods;
  for (int i = 0; i < 5000; ++i) pods.push_back(Pod(i));
  balancer.Update(Set(pods, {{"podlb.io/subset-size", "25"}}, 1), 0);
  auto snapshot = balancer.Current(0);
  EXPECT_TRUE(snapshot->table->subset);
  EXPECT_EQ(snapshot->table->service_eligible, 5000u);
  EXPECT_NEAR(static_cast<double>(snapshot->table->endpoints.size()), 25, 10);
  EXPECT_EQ(attached, static_cast<int>(snapshot->table->endpoints.size()));
  const std::set<std::string> before = TableOf(balancer);

  // One member replaced (a slice change at 5,000 pods): the others keep their stats and their
  // attachment (the connection), and the fleet-wide churn bound holds for this client.
  auto stats_of = [&](const std::string& pod) {
    for (const BalancedEndpoint& e : balancer.Current(0)->table->endpoints)
      if (e.endpoint.pod_name == pod) return e.stats;
    return std::shared_ptr<EndpointStats>();
  };
  std::map<std::string, std::shared_ptr<EndpointStats>> stats_before;
  for (const std::string& pod : before) stats_before[pod] = stats_of(pod);
  const std::string leaving = *before.begin();
  const int leaving_index = std::stoi(leaving.substr(4));
  pods[leaving_index] = Pod(5000 + leaving_index);
  pods[leaving_index].pod_name = "web-replacement";
  attached = 0;
  balancer.Update(Set(pods, {{"podlb.io/subset-size", "25"}}, 2), 0);
  const std::set<std::string> after = TableOf(balancer);
  EXPECT_FALSE(after.contains(leaving));
  int stayed = 0;
  for (const std::string& pod : after) {
    if (!before.contains(pod)) continue;
    ++stayed;
    EXPECT_EQ(stats_of(pod), stats_before[pod]) << pod;
  }
  EXPECT_GE(stayed, static_cast<int>(before.size()) - 3);
  EXPECT_EQ(attached, static_cast<int>(after.size()) - stayed);  // only newcomers connect
}

TEST(BalancerSubsetTest, DrainingMemberStaysUntilGoneAndIsNotPicked) {
  Balancer balancer({"default", "web", "grpc"}, {.client_id = "client-0"});
  std::vector<Endpoint> pods;
  for (int i = 0; i < 200; ++i) pods.push_back(Pod(i));
  const std::map<std::string, std::string> annotations = {{"podlb.io/subset-size", "10"}};
  balancer.Update(Set(pods, annotations, 1), 0);
  const std::string member = balancer.Current(0)->table->endpoints[0].endpoint.pod_name;
  const int index = std::stoi(member.substr(4));
  pods[index] = Pod(index, /*draining=*/true);
  balancer.Update(Set(pods, annotations, 2), 0);
  auto snapshot = balancer.Current(0);
  bool found = false;
  for (const BalancedEndpoint& e : snapshot->table->endpoints) {
    if (e.endpoint.pod_name != member) continue;
    found = true;
    EXPECT_TRUE(e.draining);
  }
  EXPECT_TRUE(found) << "a draining member keeps its connection until it is gone";
  for (int i = 0; i < 100; ++i)
    EXPECT_NE(snapshot->at(snapshot->Pick({.random = static_cast<uint64_t>(i)})).endpoint.pod_name,
              member);
  // A pod that was not a member and starts draining is not added.
  pods.erase(pods.begin() + index);
  balancer.Update(Set(pods, annotations, 3), 0);
  EXPECT_FALSE(TableOf(balancer).contains(member));
}

TEST(BalancerSubsetTest, BadSizeAndRingHashFallBackToEveryEndpointWithAReason) {
  Balancer balancer({"default", "web", "grpc"}, {.client_id = "client-1"});
  std::vector<Endpoint> pods;
  for (int i = 0; i < 100; ++i) pods.push_back(Pod(i));
  balancer.Update(Set(pods, {{"podlb.io/subset-size", "ten"}}, 1), 0);
  auto snapshot = balancer.Current(0);
  EXPECT_EQ(snapshot->table->endpoints.size(), 100u);
  ASSERT_EQ(snapshot->policy.problems.size(), 1u);
  EXPECT_NE(snapshot->policy.problems[0].find("podlb.io/subset-size \"ten\""), std::string::npos);
  EXPECT_NE(snapshot->policy.problems[0].find("using 0"), std::string::npos);
  // A good value after a bad one applies; ring_hash refuses it (a key must map to one pod for
  // every client) and says so.
  balancer.Update(Set(pods, {{"podlb.io/subset-size", "10"}}, 2), 0);
  EXPECT_LT(balancer.Current(0)->table->endpoints.size(), 20u);
  balancer.Update(
      Set(pods, {{"podlb.io/subset-size", "10"}, {"podlb.io/lb-policy", "ring_hash"}}, 3), 0);
  snapshot = balancer.Current(0);
  EXPECT_EQ(snapshot->table->endpoints.size(), 100u);
  ASSERT_EQ(snapshot->policy.problems.size(), 1u);
  EXPECT_NE(snapshot->policy.problems[0].find("ring_hash"), std::string::npos);
}

TEST(BalancerSubsetTest, OutlierEjectionWorksWithinTheSubsetAndKeepsHalfOfIt) {
  Balancer balancer({"default", "web", "grpc"}, {.client_id = "client-2"});
  std::vector<Endpoint> pods;
  for (int i = 0; i < 400; ++i) pods.push_back(Pod(i));
  balancer.Update(Set(pods, {{"podlb.io/subset-size", "8"}}, 1), 0);
  auto snapshot = balancer.Current(0);
  const size_t members = snapshot->table->endpoints.size();
  ASSERT_GE(members, 4u);
  // Every member fails: at most half of the subset is ejected (the cap applies to what this
  // client uses, so it always keeps pods to call).
  for (const BalancedEndpoint& e : snapshot->table->endpoints) {
    for (int i = 0; i < 3; ++i) {
      e.stats->CallStarted();
      balancer.RecordCall(*e.stats, /*failure=*/true, 1'000'000, 1);
    }
  }
  snapshot = balancer.Current(2);
  EXPECT_EQ(snapshot->ejected, std::max<size_t>(1, members / 2));
  EXPECT_EQ(snapshot->candidates.size(), members - snapshot->ejected);
}

}  // namespace
}  // namespace podlb::balancing
