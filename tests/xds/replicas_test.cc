// Two `podlb control-plane` replicas on one source, as a Deployment with two pods behind a
// Service: both serve the same resources under the same versions (a client that moves between
// them sees no change), and real xDS clients whose bootstrap lists both (a gRPC target with two
// addresses and pick_first, standing in for the Service) keep every call succeeding when the
// replica they are connected to is SIGKILLed, then take changes from the survivor. gRPC's xDS
// client reads its bootstrap once per process, so the suite fixes both replica ports.
#include <signal.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/process.h"
#include "xds/ads_test_client.h"
#include "xds/control_plane_process.h"
#include "xds/type_urls.h"
#include "xds/xds_test_backends.h"

namespace podlb::testing {
namespace {

using xds::kClusterLoadAssignmentType;
using xds::kClusterType;
using xds::kListenerType;

int g_ports[2] = {0, 0};

std::string ServerUri() {
  return "ipv4:127.0.0.1:" + std::to_string(g_ports[0]) +
         ",127.0.0.1:" + std::to_string(g_ports[1]);
}

nlohmann::json Bootstrap(const std::string& node_id) {
  return {{"xds_servers",
           {{{"server_uri", ServerUri()},
             {"channel_creds", {{{"type", "insecure"}}}},
             {"server_features", {"xds_v3", "ignore_resource_deletion"}}}}},
          {"node", {{"id", node_id}, {"locality", {{"zone", "z1"}}}}}};
}

class XdsReplicasTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_ports[0] = PickFreePort();
    do g_ports[1] = PickFreePort();
    while (g_ports[1] == g_ports[0]);
    setenv("GRPC_XDS_BOOTSTRAP_CONFIG", Bootstrap("replicas-test").dump().c_str(), 1);
  }

  void SetUp() override { file_ = dir_.path() + "/endpoints.yaml"; }

  void StartReplicas() {
    for (int i = 0; i < 2; ++i) {
      replicas_[i] = std::make_unique<ControlPlaneProcess>(std::vector<std::string>{
          "--file", file_, "--listen", "127.0.0.1:" + std::to_string(g_ports[i])});
      ASSERT_TRUE(replicas_[i]->WaitReady());
    }
  }

  // The replica holding the one client's ADS stream (and none on the other), or -1.
  int ConnectedReplica() const {
    double a = replicas_[0]->ConnectedClients(), b = replicas_[1]->ConnectedClients();
    if (a == 1 && b == 0) return 0;
    if (a == 0 && b == 1) return 1;
    return -1;
  }

  void AddBackends(int first, int count) {
    for (int i = first; i < first + count; ++i) {
      backends_.push_back(std::make_unique<NamedBackend>("pod-" + std::to_string(i),
                                                         "127.0.0." + std::to_string(i + 2)));
      ASSERT_GT(backends_.back()->port(), 0);
    }
  }

  void WriteService() {
    FileServiceSpec spec{"default/greeter:50051", {}, {}};
    for (size_t i = 0; i < backends_.size(); ++i) {
      spec.endpoints.push_back(
          {"127.0.0." + std::to_string(i + 2), backends_[i]->port(), backends_[i]->name()});
    }
    WriteFile(file_, EndpointsYaml({spec}));
  }

  TempDir dir_;
  std::string file_;
  std::vector<std::unique_ptr<NamedBackend>> backends_;
  std::unique_ptr<ControlPlaneProcess> replicas_[2];
};

const char kListenerName[] = "greeter.default:50051";
const char kClusterName[] = "default/greeter:50051";

// Subscribes to the greeter's Listener, Cluster and endpoints, reads and ACKs the three answers.
void SubscribeToGreeter(AdsTestClient& client) {
  ASSERT_TRUE(client.Subscribe(kListenerType, {kListenerName}));
  ASSERT_TRUE(client.Subscribe(kClusterType, {kClusterName}));
  ASSERT_TRUE(client.Subscribe(kClusterLoadAssignmentType, {kClusterName}));
  for (int i = 0; i < 3; ++i) {
    auto response = client.Read();
    ASSERT_TRUE(response.has_value()) << client.Finish().error_message();
    ASSERT_EQ(response->resources_size(), 1) << response->type_url();
    ASSERT_TRUE(client.Ack(*response,
                           {response->type_url() == kListenerType ? kListenerName : kClusterName}));
  }
}

// Same version_info and the same resource bytes, type by type, in what two clients last read.
void ExpectSameResources(const AdsTestClient& x, const AdsTestClient& y) {
  ASSERT_EQ(x.latest().size(), 3u);
  ASSERT_EQ(y.latest().size(), 3u);
  for (const auto& [type, response] : x.latest()) {
    const auto& other = y.latest().at(type);
    EXPECT_EQ(response.version_info(), other.version_info()) << type;
    ASSERT_EQ(response.resources_size(), other.resources_size()) << type;
    for (int i = 0; i < response.resources_size(); ++i) {
      EXPECT_EQ(response.resources(i).type_url(), other.resources(i).type_url());
      EXPECT_EQ(response.resources(i).value(), other.resources(i).value()) << type;
    }
  }
}

TEST_F(XdsReplicasTest, BothReplicasServeTheSameVersionsAndBytes) {
  WriteFile(file_, EndpointsYaml({{kClusterName, {}, {{"127.0.0.2", 50051, "pod-0"}}}}));
  StartReplicas();
  AdsTestClient on_a("127.0.0.1:" + std::to_string(g_ports[0]), grpc::InsecureChannelCredentials());
  AdsTestClient on_b("127.0.0.1:" + std::to_string(g_ports[1]), grpc::InsecureChannelCredentials());
  SubscribeToGreeter(on_a);
  SubscribeToGreeter(on_b);
  ExpectSameResources(on_a, on_b);
  const std::string eds_type(kClusterLoadAssignmentType);
  const std::string first_eds_version = on_a.latest().at(eds_type).version_info();

  // A change reaches both replicas, each pushes it: the same version and bytes again.
  WriteFile(
      file_,
      EndpointsYaml(
          {{kClusterName, {}, {{"127.0.0.2", 50051, "pod-0"}, {"127.0.0.3", 50051, "pod-1"}}}}));
  for (AdsTestClient* client : {&on_a, &on_b}) {
    auto pushed = client->Read();
    ASSERT_TRUE(pushed.has_value());
    EXPECT_EQ(pushed->type_url(), kClusterLoadAssignmentType);
  }
  ExpectSameResources(on_a, on_b);
  EXPECT_NE(on_a.latest().at(eds_type).version_info(), first_eds_version);

  // A client arriving at B now (say, after A died) is told exactly what on_a holds after its
  // history of an initial answer and a push: versions follow content, not the stream.
  AdsTestClient moved("127.0.0.1:" + std::to_string(g_ports[1]),
                      grpc::InsecureChannelCredentials());
  SubscribeToGreeter(moved);
  ExpectSameResources(on_a, moved);
}

TEST_F(XdsReplicasTest, GrpcClientMovesToTheSurvivingReplica) {
  AddBackends(0, 3);
  WriteService();
  StartReplicas();
  auto stub = grpc::testing::TestService::NewStub(
      grpc::CreateChannel("xds:///greeter.default:50051", grpc::InsecureChannelCredentials()));
  // wait_for_ready only for the first call (the channel is resolving); after that a call that
  // cannot be sent at once fails, so a gap in service shows as a failure.
  auto call = [&](bool wait_for_ready) {
    grpc::ClientContext context;
    context.set_wait_for_ready(wait_for_ready);
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    return stub->UnaryCall(&context, request, &response).ok() ? response.hostname() : "";
  };
  ASSERT_NE(call(true), "");
  int connected = -1;
  ASSERT_TRUE(WaitFor([&] { return (connected = ConnectedReplica()) >= 0; },
                      std::chrono::seconds(5), "the client's ADS stream on one replica"));

  replicas_[connected]->Kill();
  const ControlPlaneProcess& survivor = *replicas_[1 - connected];
  std::map<std::string, int> counts;
  for (int i = 0; i < 150; ++i) counts[call(false)]++;
  ASSERT_TRUE(WaitFor(
      [&] {
        counts[call(false)]++;
        return survivor.ConnectedClients() == 1;
      },
      std::chrono::seconds(10), "the client's ADS stream on the surviving replica"));
  AddBackends(3, 1);
  WriteService();
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string who = call(false);
        counts[who]++;
        return who == "pod-3";
      },
      std::chrono::seconds(10), "pod-3, announced by the survivor only, taking calls"));
  EXPECT_EQ(counts[""], 0) << "failed calls";
}

TEST_F(XdsReplicasTest, NodeClientMovesToTheSurvivingReplica) {
  if (!std::filesystem::exists(SourceDir() + "/node_modules/@grpc/grpc-js-xds")) {
    GTEST_SKIP() << "node_modules/@grpc/grpc-js-xds missing: run scripts/bootstrap.sh";
  }
  AddBackends(0, 3);
  WriteService();
  StartReplicas();
  ChildProcess client({"node", SourceDir() + "/tests/xds/node/xds_loop.js", kListenerName},
                      {"GRPC_XDS_BOOTSTRAP_CONFIG=" + Bootstrap("replicas-node").dump()});
  for (const char* pod : {"pod-0", "pod-1", "pod-2"}) {
    ASSERT_TRUE(
        client.WaitForLineContaining(std::string("first ") + pod, std::chrono::seconds(20)));
  }
  int connected = -1;
  ASSERT_TRUE(WaitFor([&] { return (connected = ConnectedReplica()) >= 0; },
                      std::chrono::seconds(5), "the client's ADS stream on one replica"));

  replicas_[connected]->Kill();
  // 200 calls counted from right after the kill, while the client finds the other replica.
  kill(client.pid(), SIGUSR2);
  ASSERT_TRUE(client.WaitForLineContaining("window", std::chrono::seconds(20)));
  ASSERT_TRUE(WaitFor([&] { return replicas_[1 - connected]->ConnectedClients() == 1; },
                      std::chrono::seconds(10), "the client's ADS stream on the survivor"));
  AddBackends(3, 1);
  WriteService();
  ASSERT_TRUE(client.WaitForLineContaining("first pod-3", std::chrono::seconds(10)));
  for (const std::string& line : client.Lines()) {
    EXPECT_FALSE(absl::StartsWith(line, "fail")) << line;
    if (absl::StartsWith(line, "window")) {
      auto counts = nlohmann::json::parse(line.substr(7));
      EXPECT_EQ(counts.size(), 3u) << line;
    }
  }
}

}  // namespace
}  // namespace podlb::testing
