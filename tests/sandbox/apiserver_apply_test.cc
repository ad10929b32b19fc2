// `kubectl apply -f deploy/` against the API-server stand-in, with the kubectl on PATH (1.32)
// and Debian 12's kubectl 1.20 (PODLB_KUBECTL_LEGACY): the create path, a second apply that
// changes nothing (no resourceVersion or generation moves), a changed manifest applied as a
// strategic merge patch, get/describe/delete of what was applied, server-side apply, a missing
// namespace, and invalid objects refused with the real Status shapes while the stored objects
// stay as they were.
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <regex>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/api_server.h"
#include "sandbox/controllers/namespace_controller.h"
#include "sandbox/seed_objects.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace std::chrono_literals;

enum class Kubectl { kOnPath, kLegacy };

std::string KubectlName(const ::testing::TestParamInfo<Kubectl>& info) {
  return info.param == Kubectl::kOnPath ? "OnPath" : "Legacy120";
}

// Every object deploy/ defines, as (resource, namespace, name).
const std::vector<std::tuple<std::string, std::string, std::string>> kDeployObjects = {
    {"namespaces", "", "podlb-system"},
    {"serviceaccounts", "podlb-system", "podlb"},
    {"serviceaccounts", "podlb-system", "podlb-proxy"},
    {"clusterroles", "", "podlb-discovery"},
    {"clusterrolebindings", "", "podlb-discovery"},
    {"clusterrolebindings", "", "podlb-proxy-discovery"},
    {"deployments", "podlb-system", "podlb-control-plane"},
    {"services", "podlb-system", "podlb-control-plane"},
    {"poddisruptionbudgets", "podlb-system", "podlb-control-plane"},
    {"daemonsets", "podlb-system", "podlb-proxy"},
    {"services", "podlb-system", "podlb-proxy"},
};

class ApplyTest : public ::testing::TestWithParam<Kubectl> {
 protected:
  void SetUp() override {
    if (GetParam() == Kubectl::kLegacy) {
      const char* legacy = std::getenv("PODLB_KUBECTL_LEGACY");
      if (legacy == nullptr || *legacy == '\0' || ::access(legacy, X_OK) != 0) {
        GTEST_SKIP() << "PODLB_KUBECTL_LEGACY is not set: run scripts/bootstrap.sh (it extracts "
                        "Debian 12's kubectl 1.20 into .cache/kubectl-1.20) and re-run cmake";
      }
      kubectl_ = legacy;
    }
    ApiServerOptions options;
    options.tokens = {"admin-token"};
    options.pod_logs = [](const std::string& ns, const std::string& pod,
                          const std::string& container,
                          bool previous) -> absl::StatusOr<std::string> {
      if (previous) return absl::InvalidArgumentError("no previous run of " + pod);
      return "first line\nlog of " + ns + "/" + pod + "/" + container + "\n";
    };
    server_ = std::make_unique<ApiServer>(options, store_);
    ASSERT_TRUE(server_->Start().ok());
    namespaces_ = std::make_unique<NamespaceController>(*store_);
    ASSERT_TRUE(namespaces_->Start().ok());
    for (const auto& node : DefaultNodes()) {
      ASSERT_TRUE(store_->Create("nodes", "", NodeObject(node)).ok());
    }
    kubeconfig_ = dir_.path() + "/kubeconfig";
    testing::WriteFile(kubeconfig_, MakeKubeconfig(server_->url(), server_->ca_pem(), "admin-token"));
    deploy_ = testing::SourceDir() + "/deploy";
  }

  int Run(std::vector<std::string> args, std::string* output) {
    std::vector<std::string> argv = {kubectl_, "--kubeconfig", kubeconfig_, "--cache-dir",
                                     dir_.path() + "/cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, output, 60s);
  }

  // A copy of deploy/ that a test may edit.
  std::string CopyOfDeploy() {
    std::string copy = dir_.path() + "/deploy";
    std::filesystem::create_directories(copy);
    for (const auto& entry : std::filesystem::directory_iterator(deploy_)) {
      if (entry.path().extension() == ".yaml") {
        std::filesystem::copy_file(entry.path(), copy + "/" + entry.path().filename().string(),
                                   std::filesystem::copy_options::overwrite_existing);
      }
    }
    return copy;
  }

  std::map<std::string, std::string> Versions() {
    std::map<std::string, std::string> versions;
    for (const auto& [resource, ns, name] : kDeployObjects) {
      auto object = store_->Get(resource, ns, name);
      versions[resource + "/" + ns + "/" + name] =
          object.ok() ? (*object)["metadata"].value("resourceVersion", "") : "missing";
    }
    return versions;
  }

  bool legacy() const { return GetParam() == Kubectl::kLegacy; }

  std::string kubectl_ = "kubectl";
  std::shared_ptr<ResourceStore> store_ = std::make_shared<ResourceStore>();
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<NamespaceController> namespaces_;
  testing::TempDir dir_;
  std::string kubeconfig_;
  std::string deploy_;
};

INSTANTIATE_TEST_SUITE_P(Kubectls, ApplyTest, ::testing::Values(Kubectl::kOnPath, Kubectl::kLegacy),
                         KubectlName);

TEST_P(ApplyTest, ApplyDeployCreatesEverythingAndASecondApplyChangesNothing) {
  std::string output;
  ASSERT_EQ(Run({"apply", "-f", deploy_}, &output), 0) << output;
  for (const char* line :
       {"namespace/podlb-system created", "serviceaccount/podlb created",
        "clusterrole.rbac.authorization.k8s.io/podlb-discovery created",
        "clusterrolebinding.rbac.authorization.k8s.io/podlb-discovery created",
        "deployment.apps/podlb-control-plane created", "service/podlb-control-plane created",
        "poddisruptionbudget.policy/podlb-control-plane created",
        "daemonset.apps/podlb-proxy created", "service/podlb-proxy created"}) {
    EXPECT_THAT(output, HasSubstr(line));
  }
  auto before = Versions();
  for (const auto& [key, version] : before) EXPECT_NE(version, "missing") << key;
  auto deployment = store_->Get("deployments", "podlb-system", "podlb-control-plane");
  ASSERT_TRUE(deployment.ok());
  EXPECT_TRUE((*deployment)["metadata"]["annotations"].contains(
      "kubectl.kubernetes.io/last-applied-configuration"));
  EXPECT_EQ((*deployment)["metadata"]["generation"], 1);
  uint64_t store_version = store_->CurrentVersion();

  ASSERT_EQ(Run({"apply", "-f", deploy_}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("deployment.apps/podlb-control-plane unchanged"));
  EXPECT_THAT(output, HasSubstr("daemonset.apps/podlb-proxy unchanged"));
  for (const auto& line : absl::StrSplit(output, '\n', absl::SkipEmpty())) {
    // A PodDisruptionBudget's selector has the "replace" patch strategy, so kubectl 1.32 always
    // sends it and prints "configured", on a real cluster too; the server finds nothing changed.
    if (absl::StrContains(line, "poddisruptionbudget")) continue;
    EXPECT_THAT(std::string(line), HasSubstr(" unchanged"));
  }
  EXPECT_EQ(Versions(), before);
  EXPECT_EQ(store_->CurrentVersion(), store_version);
}

TEST_P(ApplyTest, AChangedManifestIsPatchedWithoutLosingWhatItDoesNotChange) {
  std::string copy = CopyOfDeploy();
  std::string output;
  ASSERT_EQ(Run({"apply", "-f", copy}, &output), 0) << output;
  auto before = store_->Get("daemonsets", "podlb-system", "podlb-proxy");
  ASSERT_TRUE(before.ok());
  // Change one arg, the value of one env var, and drop one port: the patch kubectl sends names
  // only those (strategic merge patch: containers by name, env by name, ports by containerPort).
  std::string text = testing::ReadFile(copy + "/node-proxy.yaml");
  text = std::regex_replace(text, std::regex("--workers=2"), "--workers=3");
  text = std::regex_replace(text, std::regex("value: \"\""), "value: \"zone-b\"");
  text = std::regex_replace(text, std::regex(" +- \\{name: grpc-greeter, containerPort: 15002\\}\n"), "");
  testing::WriteFile(copy + "/node-proxy.yaml", text);
  ASSERT_EQ(Run({"apply", "-f", copy}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("daemonset.apps/podlb-proxy configured"));
  EXPECT_THAT(output, HasSubstr("deployment.apps/podlb-control-plane unchanged"));
  auto after = store_->Get("daemonsets", "podlb-system", "podlb-proxy");
  ASSERT_TRUE(after.ok());
  const json& container = (*after)["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(container["image"], (*before)["spec"]["template"]["spec"]["containers"][0]["image"]);
  EXPECT_THAT(container["args"].dump(), HasSubstr("--workers=3"));
  ASSERT_EQ(container["env"].size(), 3u) << container.dump();
  EXPECT_EQ(container["env"][2], json({{"name", "PODLB_ZONE"}, {"value", "zone-b"}}));
  EXPECT_EQ(container["env"][0]["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP");
  ASSERT_EQ(container["ports"].size(), 2u) << container.dump();
  EXPECT_EQ(container["ports"][1]["name"], "admin");
  EXPECT_EQ((*after)["metadata"]["generation"], 2);
  EXPECT_EQ((*after)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"], 45);
}

TEST_P(ApplyTest, GetDescribeAndDeleteWhatWasApplied) {
  std::string output;
  ASSERT_EQ(Run({"apply", "-f", deploy_}, &output), 0) << output;
  ASSERT_EQ(Run({"get", "-f", deploy_}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("podlb-control-plane"));
  EXPECT_THAT(output, HasSubstr("podlb-discovery"));
  ASSERT_EQ(Run({"get", "deploy,ds,svc,sa,pdb", "-n", "podlb-system"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("deployment.apps/podlb-control-plane"));
  EXPECT_THAT(output, HasSubstr("daemonset.apps/podlb-proxy"));
  ASSERT_EQ(Run({"describe", "deployment", "-n", "podlb-system", "podlb-control-plane"}, &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("Name:"));
  EXPECT_THAT(output, HasSubstr("podlb-control-plane"));
  EXPECT_THAT(output, HasSubstr("control-plane"));
  ASSERT_EQ(Run({"describe", "clusterrole", "podlb-discovery"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("endpointslices.discovery.k8s.io"));
  ASSERT_EQ(Run({"describe", "daemonset", "-n", "podlb-system", "podlb-proxy"}, &output), 0)
      << output;
  EXPECT_THAT(output, HasSubstr("podlb-proxy"));
  ASSERT_EQ(Run({"get", "nodes", "-L", "topology.kubernetes.io/zone"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("node-a"));
  EXPECT_THAT(output, HasSubstr("zone-c"));

  // As on a real cluster, the namespace goes Terminating first and the objects in it are still
  // there for the deletes that follow it; --ignore-not-found covers the namespace controller
  // having been quicker.
  ASSERT_EQ(Run({"delete", "-f", deploy_, "--ignore-not-found", "--wait=false"}, &output), 0)
      << output;
  EXPECT_THAT(output, HasSubstr("namespace \"podlb-system\" deleted"));
  EXPECT_THAT(output, HasSubstr("clusterrole.rbac.authorization.k8s.io \"podlb-discovery\" deleted"));
  ASSERT_TRUE(testing::WaitFor(
      [&] { return !store_->Get("namespaces", "", "podlb-system").ok(); }, 30s,
      "the namespace controller to remove podlb-system"));
  for (const auto& [resource, ns, name] : kDeployObjects) {
    EXPECT_EQ(store_->Get(resource, ns, name).status().code(), absl::StatusCode::kNotFound)
        << resource << " " << ns << "/" << name;
  }
  EXPECT_TRUE(store_->Get("namespaces", "", "default").ok());
}

TEST_P(ApplyTest, AnObjectWhoseNamespaceDoesNotExistIsNotFound) {
  std::string output;
  EXPECT_NE(Run({"apply", "-f", deploy_ + "/01-rbac.yaml"}, &output), 0);
  EXPECT_THAT(output, HasSubstr("namespaces \"podlb-system\" not found"));
  // The cluster-scoped objects of the same file went in.
  EXPECT_TRUE(store_->Get("clusterroles", "", "podlb-discovery").ok());
  EXPECT_FALSE(store_->Get("serviceaccounts", "podlb-system", "podlb").ok());
}

TEST_P(ApplyTest, InvalidObjectsAreRefusedAndTheStoredOneIsKept) {
  std::string output;
  ASSERT_EQ(Run({"apply", "-f", deploy_}, &output), 0) << output;
  auto stored = store_->Get("deployments", "podlb-system", "podlb-control-plane");
  ASSERT_TRUE(stored.ok());
  std::string copy = CopyOfDeploy();
  std::string original = testing::ReadFile(copy + "/control-plane.yaml");

  // A field of the wrong type: kubectl 1.20 refuses it against /openapi/v2, the server (for
  // 1.32, which leaves validation to it) answers 400 with the decoder's words.
  testing::WriteFile(copy + "/control-plane.yaml",
                     std::regex_replace(original, std::regex("replicas: 2"), "replicas: two"));
  EXPECT_NE(Run({"apply", "-f", copy + "/control-plane.yaml"}, &output), 0);
  if (legacy()) {
    EXPECT_THAT(output, HasSubstr("invalid type for io.k8s.api.apps.v1.DeploymentSpec.replicas"));
  } else {
    EXPECT_THAT(output, HasSubstr("Deployment in version \"v1\" cannot be handled as a "
                                  "Deployment: json: cannot unmarshal string into Go struct field "
                                  "DeploymentSpec.spec.replicas of type int32"));
  }

  // A selector that does not select the template, and a container without an image: 422.
  std::string broken = std::regex_replace(
      original, std::regex("      labels: \\{app.kubernetes.io/name: podlb-control-plane\\}\n"),
      "      labels: {app.kubernetes.io/name: other}\n");
  broken = std::regex_replace(broken, std::regex("          image: localhost/podlb:[^\n]*\n"), "");
  testing::WriteFile(copy + "/control-plane.yaml", broken);
  EXPECT_NE(Run({"apply", "-f", copy + "/control-plane.yaml"}, &output), 0);
  EXPECT_THAT(output, HasSubstr("The Deployment \"podlb-control-plane\" is invalid:"));
  EXPECT_THAT(output, HasSubstr("spec.template.metadata.labels: Invalid value: "
                                "map[string]string{\"app.kubernetes.io/name\":\"other\"}: "
                                "`selector` does not match template `labels`"));
  EXPECT_THAT(output, HasSubstr("spec.template.spec.containers[0].image: Required value"));

  auto after = store_->Get("deployments", "podlb-system", "podlb-control-plane");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *stored);
}

TEST_P(ApplyTest, ServerSideApplyCreatesThenLeavesAnUnchangedObjectAlone) {
  if (legacy()) GTEST_SKIP() << "kubectl 1.20 applies on the client only here";
  std::string output;
  ASSERT_EQ(Run({"apply", "--server-side", "-f", deploy_ + "/00-namespace.yaml"}, &output), 0)
      << output;
  ASSERT_EQ(Run({"apply", "--server-side", "-f", deploy_ + "/control-plane.yaml"}, &output), 0)
      << output;
  EXPECT_THAT(output, HasSubstr("deployment.apps/podlb-control-plane serverside-applied"));
  auto first = store_->Get("deployments", "podlb-system", "podlb-control-plane");
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(Run({"apply", "--server-side", "-f", deploy_ + "/control-plane.yaml"}, &output), 0)
      << output;
  auto second = store_->Get("deployments", "podlb-system", "podlb-control-plane");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ((*second)["metadata"]["resourceVersion"], (*first)["metadata"]["resourceVersion"]);
}

TEST_P(ApplyTest, LogsOfAPodComeFromTheLogSubresource) {
  json pod = {{"metadata", {{"name", "web-1"}}},
              {"spec", {{"containers", {{{"name", "web"}, {"image", "web:1"}}}}}}};
  ASSERT_TRUE(store_->Create("pods", "default", pod).ok());
  std::string output;
  ASSERT_EQ(Run({"logs", "web-1"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("first line\nlog of default/web-1/web"));
  // --tail and --limit-bytes, applied by the server as the real one does.
  ASSERT_EQ(Run({"logs", "web-1", "--tail=1"}, &output), 0) << output;
  EXPECT_EQ(output, "log of default/web-1/web\n");
  ASSERT_EQ(Run({"logs", "web-1", "--limit-bytes=5"}, &output), 0) << output;
  EXPECT_EQ(output, "first");
  EXPECT_NE(Run({"logs", "web-1", "--previous"}, &output), 0);
  EXPECT_THAT(output, HasSubstr("no previous run of web-1"));
  EXPECT_NE(Run({"logs", "missing"}, &output), 0);
  EXPECT_THAT(output, HasSubstr("pods \"missing\" not found"));
}

}  // namespace
}  // namespace podlb::sandbox
