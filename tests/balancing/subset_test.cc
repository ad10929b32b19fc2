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
  std::unordered_map<uint64_t, double> calls;     // per pod, each client sending 1 by its shares
};

// The fleet's subsets; with `shares`, also the calls per pod (costlier: a pass per earlier round).
Fleet Assign(const std::vector<uint64_t>& pods, size_t clients, uint32_t k, bool shares = false) {
  Fleet fleet;
  for (uint64_t p : pods) fleet.connections[p] = 0;
  for (size_t c = 0; c < clients; ++c) {
    fleet.subsets.push_back(SubsetOf(pods, c, k));
    for (uint64_t p : fleet.subsets.back()) ++fleet.connections[p];
    if (!shares) continue;
    for (const SubsetMember& m : ChooseWeightedSubset(pods, c, k)) fleet.calls[pods[m.position]] += m.share;
  }
  return fleet;
}

double MaxOverMin(const std::unordered_map<uint64_t, double>& calls) {
  double lo = 1e300, hi = 0;
  for (const auto& [pod, load] : calls) {
    lo = std::min(lo, load);
    hi = std::max(hi, load);
  }
  return hi / lo;
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

TEST(SubsetTest, ThousandClientsOfFiveThousandPodsMeetTheConnectionsAndCallsTargets) {
  std::mt19937_64 rng(1);
  const std::vector<uint64_t> pods = Pods(5000, rng);
  const Fleet fleet = Assign(pods, 1000, 25, /*shares=*/true);
  // Whole rounds (1000 clients = 5 rounds of 200 arcs): every pod has its 5 clients, plus one
  // for each round where a small arc next to it borrows it.
  int most = 0;
  for (const auto& [pod, n] : fleet.connections) {
    ASSERT_GE(n, 5);
    most = std::max(most, n);
  }
  EXPECT_LE(most, 8);  // issue #12: max/min <= 2
  // Issue #12's target is 1.3; over different pod sets the algorithm lands between 1.17 and
  // 1.21 with its shares, and at about 2 with calls spread evenly (BENCHMARKS.md).
  EXPECT_LE(MaxOverMin(fleet.calls), 1.3);
  size_t smallest = SIZE_MAX, largest = 0;
  for (const auto& s : fleet.subsets) {
    smallest = std::min(smallest, s.size());
    largest = std::max(largest, s.size());
  }
  EXPECT_EQ(smallest, 18u);  // arcs below 0.7 x 25 borrow up to it
  EXPECT_LE(largest, 25u * 2);
}

TEST(SubsetTest, PartialRoundsDifferByOneConnectionAndSmallFleetsCoverEveryPod) {
  std::mt19937_64 rng(2);
  const std::vector<uint64_t> pods = Pods(5000, rng);
  const Fleet fleet = Assign(pods, 1100, 25);  // 5.5 rounds
  for (const auto& [pod, n] : fleet.connections) {
    EXPECT_GE(n, 5);
    EXPECT_LE(n, 9);
  }
  // The sandbox test's shape: 10 clients, 20 pods, subsets of 4 → 2 rounds of 5 arcs. Over many
  // pod sets: every pod has its 2 clients and at most twice that, and no client gets fewer than
  // 3 pods (0.7 x 4, rounded up) where a lumpy arc would have left it one or none.
  for (int set = 0; set < 200; ++set) {
    const std::vector<uint64_t> few = Pods(20, rng);
    const Fleet small = Assign(few, 10, 4);
    for (const auto& [pod, n] : small.connections) {
      EXPECT_GE(n, 2);
      EXPECT_LE(n, 4);
    }
    for (const auto& subset : small.subsets) EXPECT_GE(subset.size(), 3u);
  }
}

TEST(SubsetTest, ReplacingOnePodOpensAboutItsOwnConnectionsNotAReshuffle) {
  std::mt19937_64 rng(3);
  std::vector<uint64_t> pods = Pods(5000, rng);
  const Fleet before = Assign(pods, 1000, 25);
  int total = 0;
  constexpr int kTrials = 10;
  for (int t = 0; t < kTrials; ++t) {
    // Kubernetes' two steps: the old pod leaves, then the new one comes. A connection dropped
    // at the first step and taken back at the second counts as opened.
    std::vector<uint64_t> without = pods;
    without.erase(without.begin() + static_cast<std::ptrdiff_t>(rng() % without.size()));
    const Fleet middle = Assign(without, 1000, 25);
    std::vector<uint64_t> next = without;
    next.push_back(SubsetKeyHash("web-new-" + std::to_string(t), ""));
    const int opened = Opened(before, middle) + Opened(middle, Assign(next, 1000, 25));
    // The new pod needs its 5; borrowing and lending move one more now and then (BENCHMARKS.md:
    // 5.7-5.8 on average, never more than 9 in 1,400 trials). Deterministic subsetting opens
    // ~1,000.
    EXPECT_GE(opened, 5);
    EXPECT_LE(opened, 10);  // issue #12: at most twice the pod's own
    total += opened;
  }
  EXPECT_LE(total, 6 * kTrials);
}

TEST(SubsetTest, ScalingByOnePodMovesLittleUntilTheSlotCountChanges) {
  std::mt19937_64 rng(4);
  std::vector<uint64_t> pods = Pods(5000, rng);
  const Fleet before = Assign(pods, 1000, 25);
  pods.push_back(SubsetKeyHash("web-extra", ""));
  EXPECT_LE(Opened(before, Assign(pods, 1000, 25)), 10);
  pods.pop_back();
  pods.pop_back();
  EXPECT_LE(Opened(before, Assign(pods, 1000, 25)), 10);
}

TEST(SubsetTest, DeterministicAndIndependentOfTheSetsOrder) {
  std::mt19937_64 rng(5);
  std::vector<uint64_t> pods = Pods(1000, rng);
  std::vector<std::set<uint64_t>> first;
  for (uint64_t c = 0; c < 40; ++c) first.push_back(SubsetOf(pods, c, 25));
  std::shuffle(pods.begin(), pods.end(), rng);
  for (uint64_t c = 0; c < 40; ++c) EXPECT_EQ(SubsetOf(pods, c, 25), first[c]) << c;
  // One round's clients cover every pod, and share only what small arcs borrow.
  std::map<uint64_t, int> clients_of;
  for (uint64_t c = 0; c < 40; ++c)
    for (uint64_t p : first[c]) ++clients_of[p];
  EXPECT_EQ(clients_of.size(), pods.size());
  int shared = 0;
  for (const auto& [pod, n] : clients_of) shared += n > 1;
  EXPECT_LT(shared, 50);
  // Shares too: the same for every order of the set.
  std::vector<uint64_t> sorted = pods;
  std::sort(sorted.begin(), sorted.end());
  for (uint64_t c : {5u, 77u, 123u}) {
    std::map<uint64_t, double> shuffled_shares, sorted_shares;
    for (const SubsetMember& m : ChooseWeightedSubset(pods, c, 25))
      shuffled_shares[pods[m.position]] = m.share;
    for (const SubsetMember& m : ChooseWeightedSubset(sorted, c, 25))
      sorted_shares[sorted[m.position]] = m.share;
    EXPECT_EQ(shuffled_shares, sorted_shares) << c;
  }
  // A hashed id gets a subset of the usual size too.
  EXPECT_NEAR(static_cast<double>(SubsetOf(pods, SubsetClientFromId("web-x2kq5").index, 25).size()),
              25, 10);
}

TEST(SubsetTest, SharesSumToOneKeepAFloorAndEvenOutWhatEarlierRoundsLeft) {
  std::mt19937_64 rng(6);
  const std::vector<uint64_t> pods = Pods(5000, rng);
  const uint64_t hashed = SubsetClientFromId("web-7d9f8-x2kq5").index;
  for (uint64_t client : {uint64_t{0}, uint64_t{199}, uint64_t{200}, uint64_t{777},
                          uint64_t{999}, hashed}) {
    SCOPED_TRACE(client);
    const std::vector<SubsetMember> members = ChooseWeightedSubset(pods, client, 25);
    // The same members as ChooseSubset: shares never change connections.
    std::vector<uint32_t> positions;
    double sum = 0;
    for (const SubsetMember& m : members) {
      positions.push_back(m.position);
      sum += m.share;
      // Every member carries calls: at least a quarter of an even share.
      EXPECT_GE(m.share, 0.25 / static_cast<double>(members.size()) - 1e-12);
    }
    EXPECT_EQ(positions, ChooseSubset(pods, client, 25));
    EXPECT_NEAR(sum, 1.0, 1e-9);
    // A hashed id has no real earlier rounds or round-mates to even out: an even spread.
    if (client == hashed) {
      for (const SubsetMember& m : members) EXPECT_DOUBLE_EQ(m.share, 1.0 / members.size());
    }
  }
  // A later round's clients give more to the members that earlier rounds loaded least: over
  // the fleet's first 400 clients (two rounds), calls per pod are closer to even than after
  // round 0 alone, and closer than the same two rounds spreading evenly.
  std::unordered_map<uint64_t, double> after_one, after_two, evenly;
  for (uint64_t c = 0; c < 400; ++c) {
    for (const SubsetMember& m : ChooseWeightedSubset(pods, c, 25)) {
      if (c < 200) after_one[pods[m.position]] += m.share;
      after_two[pods[m.position]] += m.share;
    }
    const std::vector<uint32_t> subset = ChooseSubset(pods, c, 25);
    for (uint32_t i : subset) evenly[pods[i]] += 1.0 / static_cast<double>(subset.size());
  }
  EXPECT_LT(MaxOverMin(after_two), MaxOverMin(after_one) * 0.8);
  EXPECT_LT(MaxOverMin(after_two), MaxOverMin(evenly) * 0.8);
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
  // Every endpoint, each with an even share.
  const std::vector<SubsetMember> all = ChooseWeightedSubset(pods, 3, 25);
  ASSERT_EQ(all.size(), 37u);
  for (const SubsetMember& m : all) EXPECT_DOUBLE_EQ(m.share, 1.0 / 37);
  EXPECT_TRUE(ChooseWeightedSubset({}, 3, 25).empty());
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
  // Each member carries its share of this client's calls, and the picker weighs it by that.
  double sum = 0;
  for (const BalancedEndpoint& e : snapshot->table->endpoints) {
    ASSERT_TRUE(e.subset_share.has_value()) << e.endpoint.pod_name;
    sum += *e.subset_share;
  }
  EXPECT_NEAR(sum, 1.0, 1e-9);
  ASSERT_EQ(snapshot->candidates.size(), snapshot->table->endpoints.size());
  for (const Candidate& c : snapshot->candidates) {
    const double share = *snapshot->table->endpoints[c.index].subset_share;
    EXPECT_NEAR(c.weight, share * 1e6, 1.0) << c.key;
  }

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
