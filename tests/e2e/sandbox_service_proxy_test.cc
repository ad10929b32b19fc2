// The Sandbox's ClusterIPs with real greeter pods: a Service the API server gave an address to is
// served at clusterIP:port, its named targetPort resolved by the slice controller, and new
// connections (one per channel) spread over every pod, as kube-proxy spreads them.
#include <unistd.h>

#include <map>

#include "grpc/testing/test.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "sandbox/sandbox.h"
#include "support/greeter_call.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
constexpr auto kTimeout = std::chrono::seconds(30);

TEST(SandboxServiceProxyTest, AServiceIsReachableAtItsClusterIpAndSpreadsConnections) {
  SandboxOptions options;
  options.pod_port = static_cast<uint16_t>(podlb::testing::PickFreePort());
  // Our own /24 of loopback, so parallel tests never share pod addresses.
  options.first_pod_ip = "127.1." + std::to_string(getpid() % 250 + 1) + ".2";
  Sandbox sandbox(options);
  ASSERT_TRUE(sandbox.Start().ok());
  ASSERT_NE(sandbox.service_proxy(), nullptr);
  // The seeded greeter got its address from the range.
  auto greeter = sandbox.store().Get("services", "default", "greeter");
  ASSERT_TRUE(greeter.ok());
  EXPECT_EQ((*greeter)["spec"]["clusterIP"], "127.0.96.1");

  // A Service of our own on a free port (another test's sandbox may hold 127.0.96.1:50051),
  // its targetPort the pods' port name.
  int port = podlb::testing::PickFreePort();
  json service = {
      {"metadata", {{"name", "greeter-cip"}, {"namespace", "default"}}},
      {"spec",
       {{"selector", {{"app", "greeter"}}},
        {"ports",
         json::array(
             {{{"name", "grpc"}, {"port", port}, {"targetPort", "grpc"}, {"protocol", "TCP"}}})}}}};
  auto created = sandbox.store().Create("services", "default", service);
  ASSERT_TRUE(created.ok()) << created.status();
  std::string address =
      (*created)["spec"]["clusterIP"].get<std::string>() + ":" + std::to_string(port);
  ASSERT_TRUE(sandbox.service_proxy()->WaitUntil(
      [&](const ServiceProxyState& state) {
        for (const auto& p : state.ports) {
          if (p.address == address) return p.endpoints.size() == 3;
        }
        return false;
      },
      kTimeout))
      << "the proxy never served " << address << " with the 3 greeter pods";

  // One channel, one connection, one pod: 30 channels reach all three ((2/3)^30 ≈ 5e-6 that a
  // given pod is missed).
  std::map<std::string, int> pods;
  for (int i = 0; i < 30; ++i) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.use_local_subchannel_pool", 1);  // a connection of its own
    auto stub = grpc::testing::TestService::NewStub(
        grpc::CreateCustomChannel("ipv4:" + address, grpc::InsecureChannelCredentials(), args));
    ++pods[podlb::testing::CallForPodName(*stub, std::chrono::seconds(5), true)];
  }
  EXPECT_EQ(pods.count(""), 0u) << "some calls failed";
  EXPECT_EQ(pods.size(), 3u) << ::testing::PrintToString(pods);
  sandbox.Stop();
}

}  // namespace
}  // namespace podlb::sandbox
