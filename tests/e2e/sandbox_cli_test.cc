// `podlb sandbox` as a real process, driven and observed only by third-party clients: kubectl
// reads the EndpointSlices, the official Python client watches them, and `podlb sandbox scale`
// / `restart` change the deployment through the API server. SIGTERM ends it with exit code 0.
#include <unistd.h>

#include <set>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/process.h"

namespace podlb::testing {
namespace {

using json = nlohmann::json;
constexpr auto kTimeout = std::chrono::seconds(40);

// The official Python client's watch stream on the greeter's EndpointSlices; one line per event.
constexpr char kWatchScript[] = R"PY(
import sys
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
api = client.DiscoveryV1Api()
w = watch.Watch()
for event in w.stream(api.list_namespaced_endpoint_slice, namespace="default",
                      label_selector="kubernetes.io/service-name=greeter", timeout_seconds=120):
    obj = event["object"]
    ready = sum(1 for e in (obj.endpoints or []) if e.conditions and e.conditions.ready)
    print(event["type"], obj.metadata.name, obj.metadata.resource_version, ready, flush=True)
)PY";

struct Endpoint {
  std::string pod;
  bool ready;
};

class SandboxCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    kubeconfig_ = dir_.path() + "/kubeconfig";
    sandbox_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        PodlbBinary(), "sandbox", "--state-dir", dir_.path(), "--pod-port",
        std::to_string(PickFreePort()), "--grace-period", "0.3", "--first-pod-ip",
        "127.2." + std::to_string(getpid() % 250 + 1) + ".2"});
    ASSERT_TRUE(sandbox_->WaitForLine([](const std::string& l) { return l == "ready"; }, kTimeout));
  }

  // kubectl's view of the greeter's endpoints, from all its slices.
  std::vector<Endpoint> KubectlEndpoints() {
    std::string out;
    int rc = RunCommand({"kubectl", "--kubeconfig", kubeconfig_, "get", "endpointslices", "-l",
                         "kubernetes.io/service-name=greeter", "-o", "json"},
                        &out);
    std::vector<Endpoint> eps;
    if (rc != 0) return eps;
    json list = json::parse(out.substr(out.find('{')), nullptr, false);
    if (list.is_discarded()) return eps;
    for (const auto& slice : list.value("items", json::array())) {
      for (const auto& e : slice.value("endpoints", json::array())) {
        eps.push_back({e["targetRef"].value("name", ""),
                       e.value("conditions", json::object()).value("ready", false)});
      }
    }
    return eps;
  }

  // Polls kubectl (another process: there is no event to wait on from here).
  [[nodiscard]] ::testing::AssertionResult WaitKubectl(
      const std::function<bool(const std::vector<Endpoint>&)>& done, const std::string& what) {
    return WaitFor([&] { return done(KubectlEndpoints()); }, kTimeout, what);
  }

  static std::function<bool(const std::vector<Endpoint>&)> ExactlyReady(size_t n) {
    return [n](const std::vector<Endpoint>& eps) {
      size_t ready = 0;
      for (const auto& e : eps) ready += e.ready ? 1 : 0;
      return eps.size() == n && ready == n;
    };
  }

  int Podlb(std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(), PodlbBinary());
    return RunCommand(args, out);
  }

  TempDir dir_;
  std::string kubeconfig_;
  std::unique_ptr<ChildProcess> sandbox_;
};

TEST_F(SandboxCliTest, ScaleIsSeenByKubectlAndPythonWatchInOrder) {
  ASSERT_TRUE(WaitKubectl(ExactlyReady(3), "kubectl sees 3 ready endpoints"));
  json info = json::parse(ReadFile(dir_.path() + "/sandbox.json"), nullptr, false);
  ASSERT_FALSE(info.is_discarded());
  EXPECT_EQ(info["pid"], sandbox_->pid());
  EXPECT_TRUE(info["api_url"].get<std::string>().starts_with("https://127.0.0.1:"));

  WriteFile(dir_.path() + "/watch.py", kWatchScript);
  ChildProcess watcher({"/usr/bin/python3", dir_.path() + "/watch.py", kubeconfig_});
  // The watch starts with the existing slice: ADDED with 3 ready endpoints.
  ASSERT_TRUE(watcher.WaitForLine(
      [](const std::string& l) { return l.starts_with("ADDED ") && l.ends_with(" 3"); }, kTimeout));

  std::string out;
  ASSERT_EQ(Podlb({"sandbox", "scale", "--state-dir", dir_.path(), "default/greeter", "5"}, &out),
            0)
      << out;
  ASSERT_TRUE(WaitKubectl(ExactlyReady(5), "kubectl sees 5 ready endpoints"));
  ASSERT_TRUE(watcher.WaitForLine(
      [](const std::string& l) { return l.starts_with("MODIFIED ") && l.ends_with(" 5"); },
      kTimeout));

  // In order: resourceVersions increase and the ready count only grows, 3 → 5.
  uint64_t last_version = 0;
  int last_ready = 0;
  for (const auto& line : watcher.Lines()) {
    std::istringstream in(line);
    std::string type, name;
    uint64_t version = 0;
    int ready = 0;
    in >> type >> name >> version >> ready;
    ASSERT_TRUE(type == "ADDED" || type == "MODIFIED") << line;
    EXPECT_GT(version, last_version) << line;
    EXPECT_GE(ready, last_ready) << line;
    last_version = version;
    last_ready = ready;
  }
  EXPECT_EQ(last_ready, 5);
  EXPECT_EQ(sandbox_->Terminate(), 0);
}

TEST_F(SandboxCliTest, RestartReplacesEveryPod) {
  ASSERT_TRUE(WaitKubectl(ExactlyReady(3), "3 ready endpoints"));
  std::set<std::string> before;
  for (const auto& e : KubectlEndpoints()) before.insert(e.pod);
  std::string out;
  ASSERT_EQ(Podlb({"sandbox", "restart", "--state-dir", dir_.path(), "default/greeter"}, &out), 0)
      << out;
  ASSERT_TRUE(WaitKubectl(
      [&](const std::vector<Endpoint>& eps) {
        if (!ExactlyReady(3)(eps)) return false;
        for (const auto& e : eps) {
          if (before.count(e.pod)) return false;
        }
        return true;
      },
      "3 new ready pods"));
  EXPECT_EQ(sandbox_->Terminate(), 0);
}

TEST_F(SandboxCliTest, ClientErrorsAreClear) {
  std::string out;
  EXPECT_NE(Podlb({"sandbox", "scale", "--state-dir", dir_.path(), "default/greeter", "-1"}, &out),
            0);
  EXPECT_NE(out.find("replicas must be"), std::string::npos) << out;
  EXPECT_NE(
      Podlb({"sandbox", "scale", "--state-dir", dir_.path(), "default/greeter", "lots"}, &out), 0);
  EXPECT_NE(out.find("replicas must be"), std::string::npos) << out;
  EXPECT_NE(Podlb({"sandbox", "scale", "--state-dir", dir_.path(), "default/nope", "2"}, &out), 0);
  EXPECT_NE(out.find("not found"), std::string::npos) << out;
  TempDir empty;
  EXPECT_NE(Podlb({"sandbox", "restart", "--state-dir", empty.path(), "default/greeter"}, &out), 0);
  EXPECT_NE(out.find("is the sandbox running"), std::string::npos) << out;
  EXPECT_NE(Podlb({"sandbox", "--replicas", "-3", "--state-dir", empty.path()}, &out), 0);
  EXPECT_NE(out.find("--replicas"), std::string::npos) << out;
  EXPECT_EQ(Podlb({"sandbox", "--service-cidr", "10.96.0.0/12", "--state-dir", empty.path()}, &out),
            2);
  EXPECT_NE(out.find("--service-cidr: service CIDR \"10.96.0.0/12\": want a loopback IPv4 block"),
            std::string::npos)
      << out;
  EXPECT_NE(Podlb({"sandbox", "--no-such-flag"}, &out), 0);
  EXPECT_EQ(sandbox_->Terminate(), 0);
}

TEST_F(SandboxCliTest, StoppedSandboxIsReportedAsNotRunning) {
  EXPECT_EQ(sandbox_->Terminate(), 0);
  std::string out;
  EXPECT_NE(Podlb({"sandbox", "scale", "--state-dir", dir_.path(), "default/greeter", "2"}, &out),
            0);
  EXPECT_NE(out.find("cannot reach the sandbox"), std::string::npos) << out;
}

}  // namespace
}  // namespace podlb::testing
