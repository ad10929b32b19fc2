// The control plane proven with a real xDS client nobody here wrote: Debian's grpc++ (xDS built
// into its libgrpc) dialing xds:///NAME.default:50051, against `podlb control-plane --file`, with
// grpc.testing backends on 127.0.0.2+. gRPC's xDS client is process-wide and reads its
// bootstrap once, so the suite fixes one control-plane port for every test and each test uses a
// Service of its own.
#include <signal.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/process.h"
#include "xds/control_plane_process.h"
#include "xds/xds_test_backends.h"

namespace podlb::testing {
namespace {

using Clock = std::chrono::steady_clock;

int g_xds_port = 0;

class XdsGrpcClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_xds_port = PickFreePort();
    nlohmann::json bootstrap = {
        {"xds_servers",
         {{{"server_uri", "127.0.0.1:" + std::to_string(g_xds_port)},
           {"channel_creds", {{{"type", "insecure"}}}},
           {"server_features", {"xds_v3", "ignore_resource_deletion"}}}}},
        // The capability claim is false for C-core 1.51 on purpose: it makes a least_request
        // Service produce a Cluster this client rejects (the NACK test).
        {"node",
         {{"id", "grpc-client-test"},
          {"locality", {{"zone", "z1"}}},
          {"metadata", {{"podlb.io/capabilities", "least_request"}}}}}};
    setenv("GRPC_XDS_BOOTSTRAP_CONFIG", bootstrap.dump().c_str(), 1);
  }

  void SetUp() override { file_ = dir_.path() + "/endpoints.yaml"; }

  void StartControlPlane() {
    control_plane_ = std::make_unique<ControlPlaneProcess>(std::vector<std::string>{
        "--file", file_, "--listen", "127.0.0.1:" + std::to_string(g_xds_port)});
    ASSERT_TRUE(control_plane_->WaitReady());
  }
  double Metric(const std::string& name) { return control_plane_->Metric(name); }

  void AddBackends(int first, int count) {
    for (int i = first; i < first + count; ++i) {
      backends_.push_back(std::make_unique<NamedBackend>("pod-" + std::to_string(i),
                                                         "127.0.0." + std::to_string(i + 2)));
      ASSERT_GT(backends_.back()->port(), 0);
    }
  }

  FileServiceSpec Service(const std::string& name, std::map<std::string, std::string> ann = {}) {
    FileServiceSpec spec{"default/" + name + ":50051", std::move(ann), {}};
    for (size_t i = 0; i < backends_.size(); ++i) {
      spec.endpoints.push_back({"127.0.0." + std::to_string(i + 2), backends_[i]->port(),
                                backends_[i]->name()});
    }
    return spec;
  }

  static std::unique_ptr<grpc::testing::TestService::Stub> Dial(const std::string& name) {
    return grpc::testing::TestService::NewStub(grpc::CreateChannel(
        "xds:///" + name + ".default:50051", grpc::InsecureChannelCredentials()));
  }

  // The backend name that answered, or "" on failure.
  static std::string Call(grpc::testing::TestService::Stub& stub,
                          const std::string& hash_value = {},
                          std::chrono::milliseconds timeout = std::chrono::seconds(10),
                          bool wait_for_ready = true) {
    grpc::ClientContext context;
    context.set_wait_for_ready(wait_for_ready);
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    if (!hash_value.empty()) context.AddMetadata("x-user", hash_value);
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    grpc::Status status = stub.UnaryCall(&context, request, &response);
    return status.ok() ? response.hostname() : "";
  }

  TempDir dir_;
  std::string file_;
  std::vector<std::unique_ptr<NamedBackend>> backends_;
  std::unique_ptr<ControlPlaneProcess> control_plane_;
};

double MaxOverMin(const std::map<std::string, int>& counts) {
  int lo = INT32_MAX, hi = 0;
  for (const auto& [name, n] : counts) {
    lo = std::min(lo, n);
    hi = std::max(hi, n);
  }
  return lo == 0 ? 1e9 : static_cast<double>(hi) / lo;
}

TEST_F(XdsGrpcClientTest, SpreadsOverPodsAndNewPodsTakeCallsWithinOneSecond) {
  AddBackends(0, 3);
  WriteFile(file_, EndpointsYaml({Service("greeter-a")}));
  StartControlPlane();
  auto stub = Dial("greeter-a");
  ASSERT_NE(Call(*stub), "");

  std::map<std::string, int> counts;
  for (int i = 0; i < 300; ++i) counts[Call(*stub)]++;
  EXPECT_EQ(counts.count(""), 0u) << "failed calls: " << counts[""];
  EXPECT_EQ(counts.size(), 3u);
  EXPECT_LE(MaxOverMin(counts), 1.2);

  AddBackends(3, 3);
  auto start = Clock::now();
  WriteFile(file_, EndpointsYaml({Service("greeter-a")}));
  std::set<std::string> seen;
  while (seen.size() < 6 && Clock::now() - start < std::chrono::seconds(5)) {
    std::string who = Call(*stub);
    ASSERT_NE(who, "");
    seen.insert(who);
  }
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_LT(elapsed, std::chrono::seconds(1))
      << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
}

TEST_F(XdsGrpcClientTest, NackedClusterDoesNotBreakTheClient) {
  AddBackends(0, 2);
  WriteFile(file_, EndpointsYaml({Service("greeter-b"),
                                  Service("bad-b", {{"podlb.io/lb-policy", "least_request"}})}));
  StartControlPlane();
  auto good = Dial("greeter-b");
  ASSERT_NE(Call(*good), "");
  // C-core 1.51 rejects LEAST_REQUEST: the CDS response carrying bad-b's cluster is NACKed.
  auto bad = Dial("bad-b");
  Call(*bad, {}, std::chrono::milliseconds(500));
  ASSERT_TRUE(WaitFor([&] { return Metric("podlb_xds_nacks_total") >= 1; },
                      std::chrono::seconds(10), "a NACK counted by the control plane"));
  std::map<std::string, int> counts;
  for (int i = 0; i < 50; ++i) counts[Call(*good)]++;
  EXPECT_EQ(counts.count(""), 0u);
  EXPECT_EQ(counts.size(), 2u);
  // The client still takes updates after the NACK.
  AddBackends(2, 1);
  WriteFile(file_, EndpointsYaml({Service("greeter-b"),
                                  Service("bad-b", {{"podlb.io/lb-policy", "least_request"}})}));
  std::set<std::string> seen;
  ASSERT_TRUE(WaitFor(
      [&] {
        seen.insert(Call(*good));
        return seen.count("pod-2") > 0;
      },
      std::chrono::seconds(5), "the new pod taking calls after a NACK"));
  EXPECT_EQ(seen.count(""), 0u);
}

TEST_F(XdsGrpcClientTest, CallsKeepSucceedingWhileTheControlPlaneRestarts) {
  AddBackends(0, 3);
  WriteFile(file_, EndpointsYaml({Service("greeter-c")}));
  StartControlPlane();
  auto stub = Dial("greeter-c");
  ASSERT_NE(Call(*stub), "");

  control_plane_->Kill();
  control_plane_.reset();
  int failures = 0;
  std::map<std::string, int> counts;
  for (int i = 0; i < 200; ++i) counts[Call(*stub, {}, std::chrono::seconds(2))]++;
  failures += counts[""];
  counts.erase("");
  EXPECT_EQ(counts.size(), 3u);

  StartControlPlane();
  ASSERT_TRUE(WaitFor(
      [&] {
        if (Call(*stub).empty()) ++failures;
        return Metric("podlb_xds_connected_clients") >= 1;
      },
      std::chrono::seconds(10), "the client reconnecting to the restarted control plane"));
  AddBackends(3, 1);
  WriteFile(file_, EndpointsYaml({Service("greeter-c")}));
  std::set<std::string> seen;
  ASSERT_TRUE(WaitFor(
      [&] {
        std::string who = Call(*stub);
        if (who.empty()) ++failures;
        seen.insert(who);
        return seen.count("pod-3") > 0;
      },
      std::chrono::seconds(5), "a new pod announced by the restarted control plane"));
  EXPECT_EQ(failures, 0);
}

// Debian's libgrpc 1.51.1 (C-core 29) crashes in its own ring_hash picker on the first call
// (grpc/grpc#31766, fixed in 1.52). The control plane recognises it from the node's user agent and
// sends the ring-hash Service to it as round robin, so this client keeps working: calls succeed
// and one header value spreads over every pod, and /debug/config says what was withheld and why.
// Ring hash itself is proven with grpc-js-xds in node_client_test.
TEST_F(XdsGrpcClientTest, RingHashServiceFallsBackToRoundRobinForThisClient) {
  AddBackends(0, 3);
  WriteFile(file_, EndpointsYaml({Service(
                       "greeter-d", {{"podlb.io/lb-policy", "ring_hash"},
                                     {"podlb.io/hash-header", "x-user"}})}));
  StartControlPlane();
  auto stub = Dial("greeter-d");
  std::set<std::string> pods;
  for (int i = 0; i < 30; ++i) pods.insert(Call(*stub, "user-1"));
  EXPECT_EQ(pods.count(""), 0u) << "failed calls";
  EXPECT_EQ(pods.size(), 3u) << "one header value should reach every pod under round robin";
  const std::string config = control_plane_->AdminGet("/debug/config");
  EXPECT_THAT(config, ::testing::HasSubstr("grpc/grpc#31766"));
  EXPECT_THAT(config, ::testing::Not(::testing::HasSubstr("RING_HASH")));
}

}  // namespace
}  // namespace podlb::testing
