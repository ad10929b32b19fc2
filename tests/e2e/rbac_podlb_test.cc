// podlb under enforced RBAC: `kubectl apply -f deploy/` into the sandbox, then `podlb
// control-plane` and `podlb proxy` run as local processes with a kubeconfig holding the token of
// their ServiceAccount (`kubectl create token`), so they get exactly the rules deploy/ grants
// them; and a ClusterRole missing `watch` on endpointslices, for which podlb prints its 403
// message naming the verb, keeps retrying, and recovers once the verb is granted.
#include <grpcpp/grpcpp.h>

#include <functional>
#include <regex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/greeter_call.h"
#include "support/process.h"
#include "support/sandbox_cluster.h"

namespace podlb::testing {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;
constexpr auto kTimeout = SandboxCluster::kTimeout;

class RbacPodlbTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<SandboxCluster>(7);
    ASSERT_TRUE(cluster_->started());
    std::string output;
    ASSERT_EQ(Kubectl({"apply", "-f", SourceDir() + "/deploy"}, &output), 0) << output;
  }

  int Kubectl(std::vector<std::string> args, std::string* output) {
    std::vector<std::string> argv = {"kubectl", "--kubeconfig", cluster_->kubeconfig(),
                                     "--cache-dir", cluster_->dir() + "/kubectl-cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, output);
  }

  // The sandbox's kubeconfig with the admin's token replaced by one of ServiceAccount
  // podlb-system/NAME, issued by `kubectl create token`.
  std::string ServiceAccountKubeconfig(const std::string& name) {
    std::string token;
    EXPECT_EQ(Kubectl({"create", "token", name, "-n", "podlb-system"}, &token), 0) << token;
    while (!token.empty() && token.back() == '\n') token.pop_back();
    std::string text = ReadFile(cluster_->kubeconfig());
    std::string replaced =
        std::regex_replace(text, std::regex("token: \"?[^\"\n]*\"?"), "token: \"" + token + "\"");
    EXPECT_NE(replaced, text);
    std::string path = cluster_->dir() + "/kubeconfig-" + name;
    WriteFile(path, replaced);
    return path;
  }

  // podlb with its log (stderr) on the captured stdout, where the test can read it.
  std::unique_ptr<ChildProcess> Podlb(std::vector<std::string> args) {
    std::vector<std::string> argv = {"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", PodlbBinary()};
    argv.insert(argv.end(), args.begin(), args.end());
    return std::make_unique<ChildProcess>(argv);
  }

  static int PortAfter(const ChildProcess& process, const std::string& marker) {
    for (const std::string& line : process.Lines()) {
      auto at = line.find(marker);
      if (at != std::string::npos) return std::stoi(line.substr(at + marker.size()));
    }
    return 0;
  }

  std::unique_ptr<grpc::testing::TestService::Stub> XdsStub(int xds_port) {
    json bootstrap = {{"xds_servers",
                       {{{"server_uri", "127.0.0.1:" + std::to_string(xds_port)},
                         {"channel_creds", {{{"type", "insecure"}}}},
                         {"server_features", {"xds_v3"}}}}},
                      {"node", {{"id", "rbac-test"}, {"locality", {{"zone", "zone-a"}}}}}};
    bootstrap_ = bootstrap.dump();
    setenv("GRPC_XDS_BOOTSTRAP_CONFIG", bootstrap_.c_str(), 1);
    return grpc::testing::TestService::NewStub(grpc::CreateChannel(
        "xds:///greeter.default:50051", grpc::InsecureChannelCredentials()));
  }

  // `podlb control-plane` with the podlb ServiceAccount's token, and a caller of the greeter
  // through it over xDS (the process must outlive the caller).
  struct XdsControlPlane {
    std::unique_ptr<ChildProcess> process;
    std::function<std::string(milliseconds, bool)> call;
  };
  XdsControlPlane StartControlPlane() {
    XdsControlPlane cp;
    cp.process = Podlb({"control-plane", "--kubeconfig", ServiceAccountKubeconfig("podlb"),
                        "--listen", "127.0.0.1:0", "--admin", ""});
    EXPECT_TRUE(cp.process->WaitForLineContaining("xds port ", kTimeout));
    std::shared_ptr<grpc::testing::TestService::Stub> xds =
        XdsStub(PortAfter(*cp.process, "xds port "));
    cp.call = [xds](milliseconds timeout, bool wait_for_ready) {
      return CallForPodName(*xds, timeout, wait_for_ready);
    };
    return cp;
  }

  std::unique_ptr<SandboxCluster> cluster_;
  std::string bootstrap_;
};

TEST_F(RbacPodlbTest, ControlPlaneAndProxyWorkWithExactlyTheRulesDeployGrants) {
  XdsControlPlane xds_control_plane = StartControlPlane();
  ASSERT_FALSE(HasFailure());
  auto& control_plane = xds_control_plane.process;
  auto& call_xds = xds_control_plane.call;
  std::set<std::string> pods = cluster_->WaitReadyPods(3);
  EXPECT_TRUE(SandboxCluster::WaitClientUses(call_xds, pods));

  auto proxy = Podlb({"proxy", "--kubeconfig", ServiceAccountKubeconfig("podlb-proxy"), "--listen",
                      "127.0.0.1:0=default/greeter:grpc", "--admin", "", "--workers", "1"});
  ASSERT_TRUE(proxy->WaitForLineContaining("listening on 127.0.0.1:", kTimeout));
  auto proxied = grpc::testing::TestService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(PortAfter(*proxy, "listening on 127.0.0.1:")),
      grpc::InsecureChannelCredentials()));
  auto call_proxy = [&](milliseconds timeout, bool wait_for_ready) {
    return CallForPodName(*proxied, timeout, wait_for_ready);
  };
  EXPECT_TRUE(SandboxCluster::WaitClientUses(call_proxy, pods));

  // Both follow a scale-up: their watches run under the same rules.
  std::set<std::string> scaled = cluster_->Settle(call_xds, 4);
  EXPECT_TRUE(SandboxCluster::WaitClientUses(call_proxy, scaled));
  for (const auto* process : {control_plane.get(), proxy.get()}) {
    for (const std::string& line : process->Lines()) {
      // podlb's refusal message; not a bare "403", which a port number may contain.
      EXPECT_THAT(line, ::testing::Not(::testing::HasSubstr("403 Forbidden"))) << line;
    }
  }
}

TEST_F(RbacPodlbTest, AMissingWatchVerbIsNamedAndRetriedUntilGranted) {
  // The role of deploy/01-rbac.yaml without `watch` on endpointslices.
  std::string rbac = ReadFile(SourceDir() + "/deploy/01-rbac.yaml");
  std::string no_watch = std::regex_replace(
      rbac, std::regex("(resources: \\[\"endpointslices\"\\]\n +verbs: \\[\"get\", \"list\"), \"watch\"\\]"),
      "$1]");
  ASSERT_NE(no_watch, rbac);
  std::string file = cluster_->dir() + "/rbac-no-watch.yaml";
  WriteFile(file, no_watch);
  std::string output;
  ASSERT_EQ(Kubectl({"apply", "-f", file}, &output), 0) << output;

  XdsControlPlane xds_control_plane = StartControlPlane();
  ASSERT_FALSE(HasFailure());
  auto& control_plane = xds_control_plane.process;
  auto& call_xds = xds_control_plane.call;
  // The list is allowed: the pods are served from it.
  std::set<std::string> pods = cluster_->WaitReadyPods(3);
  EXPECT_TRUE(SandboxCluster::WaitClientUses(call_xds, pods));
  // The watch is not, and podlb says which verb on what, with the server's own words.
  ASSERT_TRUE(control_plane->WaitForLine(
      [](const std::string& line) {
        return line.find("kubernetes: 403 Forbidden watching endpointslices") != std::string::npos &&
               line.find("needs get/list/watch on discovery.k8s.io/endpointslices") !=
                   std::string::npos &&
               line.find("cannot watch resource \"endpointslices\" in API group "
                         "\"discovery.k8s.io\"") != std::string::npos &&
               line.find("retrying with backoff") != std::string::npos;
      },
      kTimeout))
      << "no 403 message naming the watch verb";

  // Granting the verb back is enough: the retried watch then carries the scale-up.
  ASSERT_EQ(Kubectl({"apply", "-f", SourceDir() + "/deploy/01-rbac.yaml"}, &output), 0) << output;
  cluster_->Settle(call_xds, 4);
}

}  // namespace
}  // namespace podlb::testing
