// kubectl (a client nobody here wrote) against the API-server stand-in over TLS: discovery,
// get/list with server-side tables, create/delete, the scale subresource, watch, field
// selectors, chunked lists, and the 401 and 403 paths. Every test runs with the kubectl on PATH
// and again with Debian 12's kubectl 1.20 (client-side validation from /openapi/v2) when
// PODLB_KUBECTL_LEGACY names one (scripts/bootstrap.sh extracts it into .cache/kubectl-1.20).
#include <unistd.h>

#include <cstdlib>

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

enum class Kubectl { kOnPath, kLegacy };

std::string KubectlName(const ::testing::TestParamInfo<Kubectl>& info) {
  return info.param == Kubectl::kOnPath ? "OnPath" : "Legacy120";
}

class KubectlTest : public ::testing::TestWithParam<Kubectl> {
 protected:
  void SetUp() override {
    if (GetParam() == Kubectl::kLegacy) {
      const char* legacy = std::getenv("PODLB_KUBECTL_LEGACY");
      if (legacy == nullptr || *legacy == '\0') {
        GTEST_SKIP() << "PODLB_KUBECTL_LEGACY is not set: run scripts/bootstrap.sh (it extracts "
                        "Debian 12's kubectl 1.20 into .cache/kubectl-1.20) and re-run cmake";
      }
      if (::access(legacy, X_OK) != 0) {
        GTEST_SKIP() << "PODLB_KUBECTL_LEGACY=" << legacy << " is not an executable file";
      }
      kubectl_ = legacy;
    }
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
    std::vector<std::string> argv = {kubectl_, "--kubeconfig",
                                     kubeconfig.empty() ? kubeconfig_ : kubeconfig, "--cache-dir",
                                     dir_.path() + "/cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return argv;
  }

  int Run(std::vector<std::string> args, std::string* output, const std::string& kubeconfig = "") {
    return testing::RunCommand(Kubectl(std::move(args), kubeconfig), output, 60s);
  }

  bool legacy() const { return GetParam() == Kubectl::kLegacy; }

  std::string kubectl_ = "kubectl";
  std::shared_ptr<ResourceStore> store_ = std::make_shared<ResourceStore>();
  std::unique_ptr<ApiServer> server_;
  testing::TempDir dir_;
  std::string kubeconfig_;
};

INSTANTIATE_TEST_SUITE_P(Kubectls, KubectlTest,
                         ::testing::Values(Kubectl::kOnPath, Kubectl::kLegacy), KubectlName);

TEST_P(KubectlTest, GetEndpointSlicesAsJson) {
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

TEST_P(KubectlTest, GetServicesPrintsTheServersTable) {
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

TEST_P(KubectlTest, CreateFromManifestThenDelete) {
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

TEST_P(KubectlTest, ScaleDeploymentThroughTheScaleSubresource) {
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

TEST_P(KubectlTest, WatchPrintsSlicesCreatedLater) {
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("greeter-old", "10.0.0.1")).ok());
  testing::ChildProcess watch(Kubectl({"get", "endpointslices", "-w"}));
  ASSERT_TRUE(watch.WaitForLineContaining("greeter-old", 30s));
  ASSERT_TRUE(testing::WaitFor([&] { return server_->WatchesOpened("endpointslices") >= 1; }, 30s,
                               "kubectl to open its watch"));
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("greeter-new", "10.0.0.2")).ok());
  EXPECT_TRUE(watch.WaitForLineContaining("greeter-new", 30s));
}

TEST_P(KubectlTest, WrongTokenIsUnauthorized) {
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

TEST_P(KubectlTest, ForbiddenTokenGetsTheRbacMessage) {
  std::string output;
  EXPECT_NE(Run({"get", "endpointslices"}, &output, WriteKubeconfig("forbidden-token")), 0);
  EXPECT_THAT(output, HasSubstr("endpointslices.discovery.k8s.io is forbidden: User "
                                "\"system:serviceaccount:"));
  EXPECT_THAT(output, HasSubstr("cannot list resource \"endpointslices\" in API group "
                                "\"discovery.k8s.io\" in the namespace \"default\""));
}

json Pod(const std::string& name) {
  return {{"metadata", {{"name", name}, {"labels", {{"app", "web"}}}}},
          {"spec", {{"containers", {{{"name", "web"}, {"image", "web:1"}}}}}}};
}

TEST_P(KubectlTest, FieldSelectorNarrowsAList) {
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("greeter-a", "10.0.0.1")).ok());
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("greeter-b", "10.0.0.2")).ok());
  std::string output;
  ASSERT_EQ(
      Run({"get", "endpointslices", "--field-selector", "metadata.name=greeter-b", "-o", "name"},
          &output),
      0)
      << output;
  EXPECT_THAT(output, HasSubstr("endpointslice.discovery.k8s.io/greeter-b"));
  EXPECT_THAT(output, ::testing::Not(HasSubstr("greeter-a")));
}

// `kubectl get -w pod NAME` lists and then watches with fieldSelector=metadata.name=NAME.
TEST_P(KubectlTest, WatchOnePodByName) {
  ASSERT_TRUE(store_->Create("pods", "default", Pod("web-1")).ok());
  ASSERT_TRUE(store_->Create("pods", "default", Pod("web-2")).ok());
  testing::ChildProcess watch(Kubectl({"get", "-w", "pod", "web-1"}));
  ASSERT_TRUE(watch.WaitForLineContaining("web-1", 30s));
  ASSERT_TRUE(testing::WaitFor([&] { return server_->WatchesOpened("pods") >= 1; }, 30s,
                               "kubectl to open its watch"));
  ASSERT_TRUE(store_->Create("pods", "default", Pod("web-3")).ok());
  json changed = *store_->Get("pods", "default", "web-1");
  changed["metadata"]["labels"]["version"] = "2";
  ASSERT_TRUE(store_->Update("pods", "default", changed).ok());
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        int seen = 0;
        for (const auto& line : watch.Lines()) seen += line.find("web-1") != std::string::npos;
        return seen >= 2;
      },
      30s, "the change of web-1 as a second line"));
  for (const auto& line : watch.Lines()) {
    EXPECT_THAT(line, ::testing::Not(HasSubstr("web-2")));
    EXPECT_THAT(line, ::testing::Not(HasSubstr("web-3")));
  }
}

// --chunk-size pages with limit/continue under the hood; the server counts each page.
TEST_P(KubectlTest, ChunkedGetPagesThroughContinue) {
  for (const char* name : {"web-1", "web-2", "web-3", "web-4", "web-5"}) {
    ASSERT_TRUE(store_->Create("pods", "default", Pod(name)).ok());
  }
  std::string output;
  ASSERT_EQ(Run({"get", "pods", "--chunk-size=2"}, &output), 0) << output;
  for (const char* name : {"web-1", "web-2", "web-3", "web-4", "web-5"}) {
    EXPECT_THAT(output, HasSubstr(name));
  }
  EXPECT_EQ(server_->ListsServed("pods"), 3u);  // 2 + 2 + 1
  ASSERT_EQ(Run({"get", "pods", "--chunk-size=2", "-o", "name"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("pod/web-5"));
  EXPECT_EQ(server_->ListsServed("pods"), 6u);
}

// kubectl 1.20 validates manifests on the client against /openapi/v2 (protobuf): a missing
// required field never reaches the server. Newer kubectl leaves validation to the server.
TEST_P(KubectlTest, ClientSideValidationReadsTheOpenApiV2Document) {
  if (!legacy()) GTEST_SKIP() << "kubectl on PATH validates on the server (fieldValidation)";
  std::string manifest = dir_.path() + "/slice.yaml";
  testing::WriteFile(manifest,
                     "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
                     "  name: broken\nendpoints: []\n");
  std::string output;
  EXPECT_NE(Run({"create", "-f", manifest}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("missing required field \"addressType\""));
  EXPECT_EQ(store_->Get("endpointslices", "default", "broken").status().code(),
            absl::StatusCode::kNotFound);
  testing::WriteFile(manifest,
                     "apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n"
                     "  name: fine\naddressType: IPv4\nendpoints: []\n");
  ASSERT_EQ(Run({"create", "-f", manifest}, &output), 0) << output;
  EXPECT_TRUE(store_->Get("endpointslices", "default", "fine").ok());
}

}  // namespace
}  // namespace podlb::sandbox
