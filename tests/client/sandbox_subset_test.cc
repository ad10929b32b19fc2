// Subsetting end to end at small scale: the sandbox cluster with 20 greeter pods, and 10 library
// channels (clients "client-0" ... "client-9", subsets of 4) watching it through the Kubernetes
// source, each with its own connections (distinct channel arguments, so gRPC does not share
// subchannels between them as it would between channels of one process). Asserted on what the
// pods really see: every pod has 2 to 4 clients and the connection counts follow the subsets,
// each client's calls land only in its subset (and reach every member, whatever its share), and
// replacing a pod moves few connections while every kept one stays the very same TCP
// connection. The fleet-scale figures are bench/balancing/
// subset_sim's.
#include <cstdio>
#include <map>
#include <set>

#include "grpc/testing/test.grpc.pb.h"
#include "gtest/gtest.h"
#include "podlb/podlb.h"
#include "support/greeter_call.h"
#include "support/proc_connections.h"
#include "support/sandbox_cluster.h"

namespace podlb::testing {
namespace {

using std::chrono::milliseconds;

constexpr int kClients = 10;
constexpr size_t kPods = 20;
constexpr uint32_t kSubset = 4;

struct Client {
  std::shared_ptr<grpc::ChannelInterface> channel;
  std::unique_ptr<grpc::testing::TestService::Stub> stub;
};

// pod name -> the clients (indices) whose subset holds it; pod name -> IP.
struct Assignment {
  std::map<std::string, std::set<int>> clients_of;
  std::map<std::string, std::string> ip_of;
};

class SandboxSubsetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<SandboxCluster>(7);
    ASSERT_TRUE(cluster_->started());
    ASSERT_TRUE(cluster_->Run("scale", {std::to_string(kPods)}));
    cluster_->WaitReadyPods(kPods);
    for (int i = 0; i < kClients; ++i) {
      ChannelOptions options;
      options.kubeconfig = cluster_->kubeconfig();
      options.policy = LbPolicy::kRoundRobin;  // every member of the subset answers in turn
      options.subset_size = kSubset;
      options.client_id = "client-" + std::to_string(i);
      options.channel_args.SetString("podlb.test.client", options.client_id);
      auto channel = CreateChannelOrError("kubernetes:///greeter.default:grpc", options);
      ASSERT_TRUE(channel.ok()) << channel.status();
      clients_.push_back({*channel, grpc::testing::TestService::NewStub(*channel)});
    }
  }

  // Waits until every client's subset is drawn from `pods` ready pods with none of `gone`, then
  // reads the assignment from the channels' own stats.
  Assignment WaitForAssignment(const std::set<std::string>& gone = {}) {
    Assignment out;
    EXPECT_TRUE(WaitFor(
        [&] {
          out = {};
          for (int i = 0; i < kClients; ++i) {
            auto stats = GetChannelStats(*clients_[i].channel);
            if (!stats.ok() || stats->service_endpoints != kPods) return false;
            for (const EndpointStatsView& e : stats->endpoints) {
              if (gone.contains(e.pod_name) || e.draining) return false;
              out.clients_of[e.pod_name].insert(i);
              out.ip_of[e.pod_name] = e.address.substr(0, e.address.rfind(':'));
            }
          }
          return true;
        },
        milliseconds(20'000), "every client to subset the 20 ready pods"));
    return out;
  }

  // Calls each client until every member of its subset has answered; expects no answer from
  // outside the subset.
  void ExpectCallsStayInSubsets(const Assignment& assignment) {
    for (int i = 0; i < kClients; ++i) {
      std::set<std::string> subset;
      for (const auto& [pod, clients] : assignment.clients_of)
        if (clients.contains(i)) subset.insert(pod);
      std::set<std::string> answered;
      // Shares differ (subsetting evens out the fleet's calls), but every member gets at least
      // a quarter of an even share: with at most 11 members, one call in 44 or more.
      for (int call = 0; call < 200 && answered != subset; ++call) {
        const std::string pod = CallForPodName(*clients_[i].stub, milliseconds(5000), true);
        ASSERT_FALSE(pod.empty()) << "client-" << i << " call failed";
        EXPECT_TRUE(subset.contains(pod)) << "client-" << i << " reached " << pod
                                          << " outside its subset";
        answered.insert(pod);
      }
      EXPECT_EQ(answered, subset) << "client-" << i;
    }
  }

  // This process's connections by pod IP, once each pod has exactly one per client of its
  // subset (a connection a client dropped closes a moment after its channel goes).
  std::map<std::string, std::set<std::string>> ConnectionsMatching(const Assignment& assignment) {
    std::map<std::string, std::set<std::string>> connections;
    EXPECT_TRUE(WaitFor(
        [&] {
          connections = OurConnectionsByRemoteIp();
          for (const auto& [pod, clients] : assignment.clients_of)
            if (connections[assignment.ip_of.at(pod)].size() != clients.size()) return false;
          return true;
        },
        milliseconds(10'000), "one connection per pod and client of its subset"));
    return connections;
  }

  // Issue #12's balance at this size: every pod has 2 to 4 clients (max/min <= 2) and every
  // client at least 3 pods (0.7 × 4, rounded up), however lumpy the hashed arcs.
  static void ExpectBalanced(const Assignment& assignment) {
    std::map<int, int> subset_size;
    for (const auto& [pod, clients] : assignment.clients_of) {
      EXPECT_GE(clients.size(), 2u) << pod;
      EXPECT_LE(clients.size(), 4u) << pod;
      for (int client : clients) ++subset_size[client];
    }
    for (int i = 0; i < kClients; ++i) EXPECT_GE(subset_size[i], 3) << "client-" << i;
  }

  std::unique_ptr<SandboxCluster> cluster_;
  std::vector<Client> clients_;
};

TEST_F(SandboxSubsetTest, EveryPodHasAClientCallsStayInSubsetsAndAReplacementMovesFew) {
  const Assignment before = WaitForAssignment();
  // 10 clients × 4 / 20 pods: two whole rounds, so two clients per pod, and at most one more
  // per round where a lumpy arc borrows or lends it.
  ASSERT_EQ(before.clients_of.size(), kPods) << "a pod without a client";
  ExpectBalanced(before);
  ExpectCallsStayInSubsets(before);
  // What the pods see: one connection from each client whose subset holds them, none from others.
  const auto connections = ConnectionsMatching(before);

  const std::string replaced = before.clients_of.begin()->first;
  const size_t had = before.clients_of.begin()->second.size();
  ASSERT_TRUE(cluster_->DeletePod(replaced));
  cluster_->WaitReadyPods(kPods, {replaced});
  const Assignment after = WaitForAssignment({replaced});
  ASSERT_EQ(after.clients_of.size(), kPods);
  ExpectBalanced(after);
  ExpectCallsStayInSubsets(after);

  // New connections, as the pods see them: local ports not there before. A client that dropped a
  // pod while the old one drained and took it back when the new one was ready counts too.
  int opened = 0;
  size_t kept = 0;
  const auto connections_after = ConnectionsMatching(after);
  for (const auto& [pod, clients] : after.clients_of) {
    const std::set<std::string>& ports_after = connections_after.at(after.ip_of.at(pod));
    const auto it = before.ip_of.find(pod);
    for (const std::string& port : ports_after) {
      const bool same = it != before.ip_of.end() && connections.at(it->second).contains(port);
      kept += same;
      opened += !same;
    }
  }
  // The replacement takes at least one client per round (2). Borrowing and lending move a few
  // more, or fewer when the old pod was lent: over 40,000 simulated two-step replacements at
  // this size (2,000 pod sets), 2 to 8 new connections, 3 on average (BENCHMARKS.md).
  std::printf("replacing %s (%zu connections) opened %d new connections, kept %zu\n",
              replaced.c_str(), had, opened, kept);
  EXPECT_GE(opened, 2);
  EXPECT_LE(opened, 8);
}

}  // namespace
}  // namespace podlb::testing
