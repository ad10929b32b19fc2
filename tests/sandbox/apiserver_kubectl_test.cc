// kubectl (a client nobody here wrote) against the API-server stand-in over TLS: discovery,
// get/list with server-side tables, create/delete, the scale subresource, watch, and the 401 and
// 403 paths.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/api_server.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

json Slice(const std::string& name, const std::string& address) {
  return {{"metadata", {{"name", name}, {"labels", {{"kubernetes.io/service-name", "greeter"}}}}},
          {"addressType", "IPv4"},
          {"endpoints", {{{"addresses", {address}}, {"conditions", {{"ready", true}}}}}},
          {"ports", {{{"name", "grpc"}, {"port", 50051}, {"protocol", "TCP"}}}}};
}

class KubectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions options;
    options.tokens = {"good-token"};
    options.forbidden_tokens = {"forbidden-token"};
    server_ = std::make_unique<ApiServer>(options, store_);
    ASSERT_TRUE(server_->Start().ok());
    kubeconfig_ = WriteKubeconfig("good-token");
  }

  std::string WriteKubeconfig(const std::string& token) {
    std::string path = dir_.path() + "/kubeconfig-" + token;
    testing::WriteFile(path, MakeKubeconfig(server_->url(), server_->ca_pem(), token));
    return path;
  }

  std::vector<std::string> Kubectl(std::vector<std::string> args,
                                   const std::string& kubeconfig = "") {
    std::vector<std::string> argv = {"kubectl", "--kubeconfig",
                                     kubeconfig.empty() ? kubeconfig_ : kubeconfig, "--cache-dir",
                                     dir_.path() + "/cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  int Run(std::vector<std::string> args, std::string* output, const std::string& kubeconfig = "") {
    return testing::RunCommand(Kubectl(std::move(args), kubeconfig), output, 60s);
  }

  std::shared_ptr<ResourceStore> store_ = std::make_shared<ResourceStore>();
  std::unique_ptr<ApiServer> server_;
  testing::TempDir dir_;
  std::string kubeconfig_;
};

TEST_F(KubectlTest, GetEndpointSlicesAsJson) {
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("greeter-abc", "10.0.0.1")).ok());
  std::string output;
  ASSERT_EQ(Run({"get", "endpointslices", "-o", "json"}, &output), 0) << output;
  json list = json::parse(output.substr(output.find('{')), nullptr, false);
  ASSERT_FALSE(list.is_discarded()) << output;
  ASSERT_EQ(list["items"].size(), 1u) << output;
  EXPECT_EQ(list["items"][0]["metadata"]["name"], "greeter-abc");
  EXPECT_EQ(list["items"][0]["endpoints"][0]["addresses"][0], "10.0.0.1");
  EXPECT_GE(server_->ListsServed("endpointslices"), 1u);
}

TEST_F(KubectlTest, GetServicesPrintsTheServersTable) {
  ASSERT_TRUE(store_
                  ->Create("services", "default",
                           {{"metadata", {{"name", "greeter"}}},
                            {"spec", {{"ports", {{{"port", 50051}, {"protocol", "TCP"}}}}}}})
                  .ok());
  std::string output;
  ASSERT_EQ(Run({"get", "services"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("NAME"));
  EXPECT_THAT(output, HasSubstr("greeter"));
  EXPECT_THAT(output, HasSubstr("50051/TCP"));
  // Short names come from discovery.
  ASSERT_EQ(Run({"get", "svc", "greeter", "-o", "name"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("service/greeter"));
}

TEST_F(KubectlTest, CreateFromManifestThenDelete) {
  std::string manifest = dir_.path() + "/service.yaml";
  testing::WriteFile(manifest,
                     "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  labels: {app: web}\n"
                     "spec:\n  selector: {app: web}\n  ports:\n  - name: http\n    port: 80\n");
  std::string output;
  ASSERT_EQ(Run({"create", "-f", manifest}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("service/web created"));
  auto stored = store_->Get("services", "default", "web");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ((*stored)["spec"]["ports"][0]["port"], 80);

  EXPECT_NE(Run({"create", "-f", manifest}, &output), 0);
  EXPECT_THAT(output, HasSubstr("AlreadyExists"));

  ASSERT_EQ(Run({"delete", "service", "web"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("service \"web\" deleted"));
  EXPECT_EQ(store_->Get("services", "default", "web").status().code(), absl::StatusCode::kNotFound);

  EXPECT_NE(Run({"delete", "service", "web"}, &output), 0);
  EXPECT_THAT(output, HasSubstr("NotFound"));
}

TEST_F(KubectlTest, ScaleDeploymentThroughTheScaleSubresource) {
  json deployment = {{"metadata", {{"name", "greeter"}}},
                     {"spec",
                      {{"replicas", 3},
                       {"selector", {{"matchLabels", {{"app", "greeter"}}}}},
                       {"template", {{"metadata", {{"labels", {{"app", "greeter"}}}}}}}}}};
  ASSERT_TRUE(store_->Create("deployments", "default", deployment).ok());
  std::string output;
  ASSERT_EQ(Run({"scale", "deploy", "greeter", "--replicas=5"}, &output), 0) << output;
  auto stored = store_->Get("deployments", "default", "greeter");
  ASSERT_TRUE(stored.ok());
  EXPECT_EQ((*stored)["spec"]["replicas"], 5);
}

TEST_F(KubectlTest, WatchPrintsSlicesCreatedLater) {
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("greeter-old", "10.0.0.1")).ok());
  testing::ChildProcess watch(Kubectl({"get", "endpointslices", "-w"}));
  ASSERT_TRUE(watch.WaitForLineContaining("greeter-old", 30s));
  ASSERT_TRUE(testing::WaitFor([&] { return server_->WatchesOpened("endpointslices") >= 1; }, 30s,
                               "kubectl to open its watch"));
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("greeter-new", "10.0.0.2")).ok());
  EXPECT_TRUE(watch.WaitForLineContaining("greeter-new", 30s));
}

TEST_F(KubectlTest, WrongTokenIsUnauthorized) {
  std::string output;
  EXPECT_NE(Run({"get", "endpointslices"}, &output, WriteKubeconfig("wrong-token")), 0);
  // kubectl's words for a 401, with the cause as client-go decodes it from discovery.
  EXPECT_THAT(output, HasSubstr("error: You must be logged in to the server"));
  // With discovery cached (by a good token), the 401 comes from the list itself and kubectl
  // prints the Status the server sent.
  ASSERT_EQ(Run({"get", "endpointslices"}, &output), 0) << output;
  EXPECT_NE(Run({"get", "endpointslices"}, &output, WriteKubeconfig("wrong-token")), 0);
  EXPECT_THAT(output, HasSubstr("error: You must be logged in to the server (Unauthorized)"));
}

TEST_F(KubectlTest, ForbiddenTokenGetsTheRbacMessage) {
  std::string output;
  EXPECT_NE(Run({"get", "endpointslices"}, &output, WriteKubeconfig("forbidden-token")), 0);
  EXPECT_THAT(output, HasSubstr("endpointslices.discovery.k8s.io is forbidden: User "
                                "\"system:serviceaccount:"));
  EXPECT_THAT(output, HasSubstr("cannot list resource \"endpointslices\" in API group "
                                "\"discovery.k8s.io\" in the namespace \"default\""));
}

}  // namespace
}  // namespace podlb::sandbox
