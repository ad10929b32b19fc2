// `podlb demo --cluster` against `podlb sandbox`, which then plays the user's cluster end to end:
// the demo creates a scratch namespace with its ServiceAccounts and Roles, runs itself there as a
// Job (`podlb demo --in-cluster`, image podlb-demo, run by the sandbox's kubelet as a podlb
// process with only that account's RBAC), whose runs deploy `podlb test-server` backends behind a
// ClusterIP and a headless Service; the table comes back through the Job's log, and the
// namespace is deleted. The sandbox has no cluster DNS: the dns baseline must say so.
#include <atomic>
#include <regex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/process.h"
#include "support/sandbox_cluster.h"

namespace podlb::testing {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

class ClusterDemoTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<SandboxCluster>(18);
    ASSERT_TRUE(cluster_->started());
  }

  std::string Kubectl(std::vector<std::string> args) {
    std::vector<std::string> argv = {"kubectl", "--kubeconfig", cluster_->kubeconfig(),
                                     "--cache-dir", cluster_->dir() + "/kubectl-cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    RunCommand(argv, &output, 30s);
    return output;
  }

  // The demo's namespaces the API server still has (Terminating ones included).
  std::vector<std::string> DemoNamespaces() {
    json list = json::parse(Kubectl({"get", "namespaces", "-l",
                                      "app.kubernetes.io/part-of=podlb-demo", "-o", "json"}),
                            nullptr, false);
    std::vector<std::string> names;
    if (list.is_discarded()) return {"<unreadable>"};
    for (const auto& ns : list["items"]) names.push_back(ns["metadata"]["name"]);
    return names;
  }

  std::vector<std::string> DemoArgs(std::vector<std::string> extra) {
    std::vector<std::string> argv = {PodlbBinary(), "demo", "--cluster", "--kubeconfig",
                                     cluster_->kubeconfig()};
    argv.insert(argv.end(), extra.begin(), extra.end());
    return argv;
  }

  std::unique_ptr<SandboxCluster> cluster_;
};

json FindJson(const std::string& output) {
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("{\"scenarios\"")) return json::parse(line, nullptr, false);
  }
  return json();
}

TEST_F(ClusterDemoTest, RunsAsAJobInAScratchNamespaceAndCleansUp) {
  std::string output;
  int code = RunCommand(DemoArgs({"--strategies", "clusterip,dns,xds,proxy,library", "--scenarios",
                                  "steady", "--duration", "2", "--rate", "150", "--json"}),
                        &output, 240s);
  EXPECT_EQ(code, 0) << output;
  // Progress comes from the Job's log, then the namespace goes.
  std::smatch ns;
  ASSERT_TRUE(std::regex_search(output, ns, std::regex("namespace (podlb-demo-[a-z0-9]{5})\n")))
      << output;
  EXPECT_THAT(output, HasSubstr("demo: job " + ns[1].str() + "/podlb-demo runs"));
  EXPECT_THAT(output, HasSubstr("demo: [1/5] clusterip · steady"));
  EXPECT_THAT(output, HasSubstr("demo: deleted namespace " + ns[1].str()));

  json result = FindJson(output);
  ASSERT_TRUE(result.is_object()) << output;
  ASSERT_EQ(result["scenarios"].size(), 1u);
  std::map<std::string, json> runs;
  for (const auto& run : result["scenarios"][0]["strategies"]) runs[run["name"]] = run;
  ASSERT_EQ(runs.size(), 5u) << result.dump(2);
  // Every remedy and the ClusterIP baseline ran in the Job against test-server pods.
  for (const char* name : {"clusterip", "xds", "proxy", "library"}) {
    SCOPED_TRACE(name);
    const json& run = runs[name];
    EXPECT_FALSE(run.contains("error")) << run.dump();
    EXPECT_GE(run["calls"].get<int>(), 200);
    EXPECT_EQ(run["failed_calls"], 0);
    // Three backends, named as the Deployment names its pods.
    ASSERT_EQ(run["per_pod"].size(), 3u) << run.dump();
    for (const auto& [pod, calls] : run["per_pod"].items()) {
      EXPECT_THAT(pod, ::testing::StartsWith("greeter-"));
    }
  }
  for (const char* name : {"xds", "proxy", "library"}) {
    for (const auto& [pod, calls] : runs[name]["per_pod"].items()) {
      EXPECT_GT(calls.get<int>(), 0) << name << " never reached " << pod;
    }
  }
  // No cluster DNS in the sandbox: the dns baseline says it could not run here, and why.
  const json& dns = runs["dns"];
  EXPECT_EQ(dns.value("unavailable", false), true) << dns.dump();
  EXPECT_THAT(dns.value("setup_error", ""),
              HasSubstr("cluster DNS does not resolve greeter-headless." + ns[1].str() +
                        ".svc.cluster.local"));

  // The namespace (Job, backends, accounts) is gone once the namespace controller emptied it.
  EXPECT_TRUE(WaitFor([&] { return DemoNamespaces().empty(); }, 30s, "the namespace deleted"));
}

TEST_F(ClusterDemoTest, FaultScenarioReachesTheBackendThroughItsPod) {
  // The failing pod is made to fail half its calls by annotating it through the API; the
  // test-server follows its own pod. Nothing else fails a call here (the steady runs above fail
  // none), so failed calls are the fault arriving; the Service's outlier detection (the fault
  // scenarios' annotations) then ejects the pod.
  std::string output;
  int code = RunCommand(
      DemoArgs({"--strategies", "proxy-round_robin", "--scenarios", "failing-pod", "--json"}),
      &output, 240s);
  EXPECT_EQ(code, 0) << output;
  json result = FindJson(output);
  ASSERT_TRUE(result.is_object()) << output;
  ASSERT_EQ(result["scenarios"][0]["strategies"].size(), 1u) << result.dump(2);
  const json& run = result["scenarios"][0]["strategies"][0];
  EXPECT_THAT(run.value("bad_pod", ""), ::testing::StartsWith("greeter-")) << run.dump(2);
  EXPECT_GT(run["failed_after_fault"].get<int>(), 0) << run.dump(2);
  EXPECT_EQ(run["failed_after_fault"], run["failed_calls"]) << "a call failed before the fault";
  EXPECT_TRUE(WaitFor([&] { return DemoNamespaces().empty(); }, 30s, "the namespace deleted"));
}

TEST_F(ClusterDemoTest, InterruptDeletesTheNamespace) {
  ChildProcess demo(DemoArgs({"--strategies", "proxy", "--scenarios", "steady", "--duration",
                              "60"}));
  // Interrupted once its Job is running (the namespace exists and holds the Job's pod).
  ASSERT_TRUE(WaitFor(
      [&] {
        return Kubectl({"get", "pods", "-A", "-l", "job-name=podlb-demo", "--no-headers"})
                   .find("Running") != std::string::npos;
      },
      60s, "the demo's Job running"));
  EXPECT_EQ(DemoNamespaces().size(), 1u);
  EXPECT_EQ(demo.Terminate(30s), 130);
  EXPECT_TRUE(WaitFor([&] { return DemoNamespaces().empty(); }, 30s, "the namespace deleted"));
}

TEST_F(ClusterDemoTest, AnImageTheClusterCannotRunIsAClearErrorAndNothingIsLeft) {
  std::string output;
  int code = RunCommand(DemoArgs({"--image", "registry.example/other:1", "--strategies", "proxy",
                                  "--scenarios", "steady", "--duration", "1"}),
                        &output, 120s);
  EXPECT_EQ(code, 1) << output;
  EXPECT_THAT(output, HasSubstr("cannot start: ErrImageNeverPull"));
  EXPECT_THAT(output, HasSubstr("pass --image"));
  EXPECT_TRUE(WaitFor([&] { return DemoNamespaces().empty(); }, 30s, "the namespace deleted"));
}

TEST_F(ClusterDemoTest, BadFlagsAreRefusedBeforeTouchingTheCluster) {
  std::string output;
  EXPECT_EQ(RunCommand({PodlbBinary(), "demo", "--kubeconfig", cluster_->kubeconfig()}, &output),
            2);
  EXPECT_THAT(output, HasSubstr("--kubeconfig requires --cluster"));
  EXPECT_EQ(RunCommand({PodlbBinary(), "demo", "--cluster", "--kubeconfig",
                        cluster_->dir() + "/missing"},
                       &output),
            2);
  EXPECT_THAT(output, HasSubstr("needs a kubeconfig"));
  EXPECT_EQ(RunCommand(DemoArgs({"--report", cluster_->dir() + "/r.html"}), &output), 2);
  EXPECT_THAT(output, HasSubstr("--report is not available with --cluster"));
  EXPECT_EQ(RunCommand(DemoArgs({"--in-cluster"}), &output), 2);
  EXPECT_THAT(output, HasSubstr("--cluster and --in-cluster exclude each other"));
  // The Job's own mode, outside a cluster: no in-cluster environment to run with.
  EXPECT_EQ(RunCommand({PodlbBinary(), "demo", "--in-cluster"}, &output), 2);
  EXPECT_THAT(output, HasSubstr("demo: --in-cluster: kubernetes: not running in a cluster"));
  EXPECT_TRUE(DemoNamespaces().empty());
}

}  // namespace
}  // namespace podlb::testing
