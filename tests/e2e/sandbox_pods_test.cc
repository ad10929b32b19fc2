// The Sandbox in-process with real backend pods: every published endpoint is a gRPC server
// that answers with its pod name; scaling and a rolling restart through the API server (as
// kubectl would, with SandboxClient over TLS) move the endpoints and stop removed pods.
#include <unistd.h>

#include <set>

#include "grpc/testing/test.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "sandbox/controller_test_support.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_client.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using testing::EndpointsOf;
using testing::ExactlyReady;
using testing::Objects;
constexpr auto kTimeout = std::chrono::seconds(30);

std::string CallPod(const std::string& address) {
  auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  auto stub = grpc::testing::TestService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  grpc::testing::SimpleResponse response;
  grpc::Status status = stub->UnaryCall(&context, grpc::testing::SimpleRequest(), &response);
  return status.ok() ? response.hostname() : "error: " + status.error_message();
}

class SandboxPodsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SandboxOptions options;
    options.pod_port = static_cast<uint16_t>(podlb::testing::PickFreePort());
    // Our own /24 of loopback, so parallel tests never share pod addresses.
    options.first_pod_ip = "127.1." + std::to_string(getpid() % 250 + 1) + ".2";
    options.grace_period = std::chrono::milliseconds(200);
    port_ = options.pod_port;
    sandbox_ = std::make_unique<Sandbox>(options);
    absl::Status status = sandbox_->Start();
    ASSERT_TRUE(status.ok()) << status;
  }

  [[nodiscard]] ::testing::AssertionResult WaitSlices(
      const std::function<bool(const Objects&)>& done, const std::string& what) {
    return testing::WaitForObjects(sandbox_->store(), "endpointslices", "default", done, kTimeout,
                                   what);
  }
  Objects Slices() {
    return sandbox_->store().List("endpointslices", "default", LabelSelector{}).items;
  }

  uint16_t port_ = 0;
  std::unique_ptr<Sandbox> sandbox_;
};

TEST_F(SandboxPodsTest, EveryEndpointIsAPodAnsweringWithItsName) {
  ASSERT_TRUE(WaitSlices(ExactlyReady(3), "3 ready endpoints"));
  std::set<std::string> ips;
  for (const auto& e : EndpointsOf(Slices())) {
    EXPECT_EQ(CallPod(e.ip + ":" + std::to_string(port_)), e.pod);
    ips.insert(e.ip);
  }
  EXPECT_EQ(ips.size(), 3u);
  EXPECT_EQ(sandbox_->Pods().size(), 3u);
  Objects slices = Slices();
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0]["ports"][0]["port"], port_);
  EXPECT_EQ(slices[0]["ports"][0]["name"], "grpc");
}

TEST_F(SandboxPodsTest, ScaleAndRestartThroughTheApiServer) {
  ASSERT_TRUE(WaitSlices(ExactlyReady(3), "3 ready endpoints"));
  podlb::testing::TempDir dir;
  podlb::testing::WriteFile(dir.path() + "/kubeconfig", sandbox_->Kubeconfig());
  auto creds = LoadKubeconfig(dir.path() + "/kubeconfig");
  ASSERT_TRUE(creds.ok()) << creds.status();
  EXPECT_EQ(creds->server, sandbox_->api_url());
  SandboxClient client(*creds);

  ASSERT_TRUE(client.Scale("default", "greeter", 4).ok());
  ASSERT_TRUE(WaitSlices(ExactlyReady(4), "4 ready endpoints"));
  for (const auto& e : EndpointsOf(Slices())) {
    EXPECT_EQ(CallPod(e.ip + ":" + std::to_string(port_)), e.pod);
  }

  std::set<std::string> before;
  for (const auto& e : EndpointsOf(Slices())) before.insert(e.pod);
  absl::Status restarted = client.RolloutRestart("default", "greeter");
  ASSERT_TRUE(restarted.ok()) << restarted;
  ASSERT_TRUE(WaitSlices(
      [&](const Objects& s) {
        if (!ExactlyReady(4)(s)) return false;
        for (const auto& e : EndpointsOf(s)) {
          if (before.count(e.pod)) return false;
        }
        return true;
      },
      "4 new ready pods"));
  // Replaced pods are shut down, not just unpublished.
  ASSERT_TRUE(podlb::testing::WaitFor([&] { return sandbox_->Pods().size() == 4; }, kTimeout,
                                      "old pods stopped"));
  for (const auto& name : before) EXPECT_EQ(sandbox_->FindPod(name), nullptr) << name;

  absl::Status missing = client.Scale("default", "nope", 2);
  EXPECT_EQ(missing.code(), absl::StatusCode::kNotFound) << missing;
}

TEST_F(SandboxPodsTest, StopShutsEveryPodDown) {
  ASSERT_TRUE(WaitSlices(ExactlyReady(3), "3 ready endpoints"));
  auto pods = sandbox_->Pods();
  ASSERT_EQ(pods.size(), 3u);
  sandbox_->Stop();
  for (const auto& pod : pods) EXPECT_FALSE(pod->running()) << pod->name();
}

}  // namespace
}  // namespace podlb::sandbox
