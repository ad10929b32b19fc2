// ProcessPodRuntime: pods of podlb's image run as real `podlb` processes against a real API
// server stand-in: in-cluster configuration from the mounted ServiceAccount token, the downward
// API in their arguments, readiness through the manifest's HTTP probe, logs, restarts after a
// failed liveness probe or an exit (with the pod's status saying so), and SIGTERM then SIGKILL
// after the pod's grace period.
#include "sandbox/pods/process_pod_runtime.h"

#include <unistd.h>

#include <filesystem>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/api_server.h"
#include "sandbox/controllers/store_watch.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// An address of its own per test process, so parallel tests never share a pod IP and port.
std::string PodIp() { return "127.0.77." + std::to_string(2 + getpid() % 250); }

class ProcessPodRuntimeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions options;
    options.tokens = {"admin-token"};
    server_ = std::make_unique<ApiServer>(options, store_);
    ASSERT_TRUE(server_->Start().ok());
    // What deploy/01-rbac.yaml grants, bound to default/podlb.
    ASSERT_TRUE(store_->Create("serviceaccounts", "default", {{"metadata", {{"name", "podlb"}}}}).ok());
    ASSERT_TRUE(store_
                    ->Create("clusterroles", "",
                             json::parse(R"({"metadata": {"name": "reader"}, "rules": [
                               {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                                "verbs": ["get", "list", "watch"]},
                               {"apiGroups": [""], "resources": ["services", "endpoints"],
                                "verbs": ["get", "list", "watch"]}]})"))
                    .ok());
    ASSERT_TRUE(store_
                    ->Create("clusterrolebindings", "",
                             json::parse(R"({"metadata": {"name": "reader"},
                               "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                           "kind": "ClusterRole", "name": "reader"},
                               "subjects": [{"kind": "ServiceAccount", "name": "podlb",
                                             "namespace": "default"}]})"))
                    .ok());
    ProcessPodRuntimeOptions runtime;
    runtime.podlb_binary = testing::PodlbBinary();
    runtime.state_dir = dir_.path();
    runtime.api_port = server_->port();
    runtime.ca_pem = server_->ca_pem();
    runtime.issue_token = [this](const std::string& ns, const std::string& account) {
      return server_->IssueServiceAccountToken(ns, account, std::chrono::hours(1));
    };
    runtime.restart_backoff = 200ms;
    runtime.token_refresh = token_refresh_;
    runtime_ = std::make_unique<ProcessPodRuntime>(*store_, runtime);
  }

  // A pod as the workload controller creates it (Pending, podIP set), stored and launched.
  PodLaunch Launch(const std::string& name, const json& container, int grace_seconds = 5,
                   const std::string& restart_policy = "Always") {
    json pod = {{"apiVersion", "v1"},
                {"kind", "Pod"},
                {"metadata", {{"name", name}, {"namespace", "default"}}},
                {"spec",
                 {{"nodeName", "node-a"},
                  {"serviceAccountName", "podlb"},
                  {"terminationGracePeriodSeconds", grace_seconds},
                  {"restartPolicy", restart_policy},
                  {"containers", json::array({container})}}},
                {"status",
                 {{"phase", "Pending"},
                  {"podIP", PodIp()},
                  {"containerStatuses",
                   json::array({{{"name", container.value("name", "")}, {"ready", false},
                                 {"restartCount", 0}}})}}}};
    auto created = store_->Create("pods", "default", pod);
    EXPECT_TRUE(created.ok()) << created.status();
    return {.name = name,
            .ns = "default",
            .ip = PodIp(),
            .node = "node-a",
            .pod = *created,
            .termination_grace = std::chrono::seconds(grace_seconds)};
  }

  // The control plane of deploy/control-plane.yaml, on this test's pod IP.
  static json ControlPlane() {
    return json::parse(R"({
      "name": "control-plane", "image": "localhost/podlb:0.1.0",
      "args": ["control-plane", "--namespace", "default", "--listen", "$(POD_IP):0",
               "--admin", "$(POD_IP):18001"],
      "env": [{"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
      "ports": [{"name": "admin", "containerPort": 18001}],
      "readinessProbe": {"httpGet": {"path": "/readyz", "port": "admin"}, "periodSeconds": 1}})");
  }

  // Waits on the store's watch for the pod to match `want` (the runtime writes its status).
  bool WaitForPod(const std::string& name, const std::function<bool(const json&)>& want,
                  std::chrono::milliseconds timeout = 20s) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    uint64_t from = store_->CurrentVersion();
    auto pod = store_->Get("pods", "default", name);
    if (pod.ok() && want(*pod)) return true;
    auto watcher = store_->Watch("pods", "default", LabelSelector(), from);
    if (!watcher.ok()) return false;
    while (std::chrono::steady_clock::now() < deadline) {
      auto event = (*watcher)->Next(std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now()));
      if (!event) continue;
      if (ObjectKey(event->object) == "default/" + name && want(event->object)) return true;
    }
    pod = store_->Get("pods", "default", name);
    return pod.ok() && want(*pod);
  }

  static const json& Container(const json& pod) { return pod["status"]["containerStatuses"][0]; }

  std::chrono::milliseconds token_refresh_ = std::chrono::minutes(48);
  testing::TempDir dir_;
  std::shared_ptr<ResourceStore> store_ = std::make_shared<ResourceStore>();
  std::unique_ptr<ApiServer> server_;
  std::unique_ptr<ProcessPodRuntime> runtime_;
};

TEST_F(ProcessPodRuntimeTest, ControlPlaneRunsInClusterAndIsReadyThroughItsProbe) {
  ASSERT_TRUE(runtime_->StartPod(Launch("cp-1", ControlPlane())).ok());
  ASSERT_TRUE(WaitForPod("cp-1", [](const json& pod) { return Container(pod).value("ready", false); }))
      << *runtime_->Logs("default", "cp-1", "");
  EXPECT_TRUE(runtime_->ProbeReadiness("cp-1").ok());
  // The mounted account: its token authenticated the control plane's list and watch.
  const std::string mount = dir_.path() + "/pods/default/cp-1/serviceaccount";
  EXPECT_EQ(testing::ReadFile(mount + "/namespace"), "default");
  EXPECT_EQ(testing::ReadFile(mount + "/ca.crt"), server_->ca_pem());
  EXPECT_GT(server_->WatchesOpened("endpointslices"), 0u);
  auto logs = runtime_->Logs("default", "cp-1", "control-plane");
  ASSERT_TRUE(logs.ok());
  EXPECT_THAT(*logs, HasSubstr("serving ADS on " + PodIp()));
  EXPECT_FALSE(runtime_->Logs("default", "cp-1", "sidecar").ok());
  EXPECT_FALSE(runtime_->Logs("default", "nope", "").ok());
  EXPECT_THAT(runtime_->Logs("default", "cp-1", "", /*previous=*/true).status().message(),
              HasSubstr("previous terminated container \"control-plane\" in pod \"cp-1\" not found"));

  // Deleted: SIGTERM, the process exits within its grace, and the token goes with the pod.
  auto start = std::chrono::steady_clock::now();
  runtime_->BeginTermination("cp-1");
  runtime_->StopPod("cp-1", 0ms);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_FALSE(std::filesystem::exists(mount));
  EXPECT_FALSE(runtime_->ProbeReadiness("cp-1").ok());
}

TEST_F(ProcessPodRuntimeTest, ReadinessFollowsTheProbeNotTheProcess) {
  json container = ControlPlane();
  // The probe asks a port nothing serves: the process runs, the pod never becomes ready.
  container["readinessProbe"]["httpGet"]["port"] = 1;
  ASSERT_TRUE(runtime_->StartPod(Launch("cp-2", container)).ok());
  absl::Status ready = runtime_->ProbeReadiness("cp-2");
  // Two probe periods later it still is not, and says why as the kubelet would.
  EXPECT_FALSE(WaitForPod("cp-2", [](const json& pod) { return Container(pod).value("ready", false); },
                          2500ms));
  ready = runtime_->ProbeReadiness("cp-2");
  ASSERT_FALSE(ready.ok());
  EXPECT_THAT(ready.message(), HasSubstr("Readiness probe failed: Get \"http://" + PodIp() +
                                         ":1/readyz\": dial tcp " + PodIp() +
                                         ":1: connect: connection refused"));
}

TEST_F(ProcessPodRuntimeTest, FailedLivenessProbeRestartsTheContainer) {
  json container = ControlPlane();
  // After a second, so the first run has written its log by the time it is restarted.
  container["livenessProbe"] = {{"tcpSocket", {{"port", 1}}},
                                {"initialDelaySeconds", 1},
                                {"periodSeconds", 1},
                                {"failureThreshold", 1}};
  ASSERT_TRUE(runtime_->StartPod(Launch("cp-3", container, 1)).ok());
  ASSERT_TRUE(WaitForPod("cp-3", [](const json& pod) {
    return Container(pod).value("restartCount", 0) >= 1 && Container(pod).contains("lastState");
  }));
  EXPECT_TRUE(
      std::filesystem::exists(dir_.path() + "/pods/default/cp-3/control-plane.log.previous"));
  auto previous = runtime_->Logs("default", "cp-3", "", /*previous=*/true);
  ASSERT_TRUE(previous.ok()) << previous.status();
  EXPECT_THAT(*previous, HasSubstr("serving ADS on"));
}

TEST_F(ProcessPodRuntimeTest, FailedLivenessProbeUnderRestartPolicyNeverFailsThePod) {
  json container = ControlPlane();
  container["livenessProbe"] = {{"tcpSocket", {{"port", 1}}},
                                {"initialDelaySeconds", 1},
                                {"periodSeconds", 1},
                                {"failureThreshold", 1}};
  ASSERT_TRUE(runtime_->StartPod(Launch("cp-5", container, 1, "Never")).ok());
  ASSERT_TRUE(WaitForPod("cp-5", [](const json& pod) {
    return pod["status"].value("phase", "") == "Failed";
  }));
  json pod = *store_->Get("pods", "default", "cp-5");
  // Killed, not restarted; the pod failed whatever its process exited with on SIGTERM.
  EXPECT_EQ(Container(pod)["restartCount"], 0);
  EXPECT_NE(Container(pod)["state"]["terminated"]["exitCode"], 0);
  EXPECT_EQ(Container(pod)["state"]["terminated"]["reason"], "Error");
  EXPECT_FALSE(Container(pod)["ready"].get<bool>());
  EXPECT_EQ(runtime_->Outcome("cp-5"), PodOutcome::kFailed);
  // What it wrote stays readable until the pod is deleted, and then goes with its directory.
  EXPECT_THAT(*runtime_->Logs("default", "cp-5", ""), HasSubstr("serving ADS on"));
  runtime_->StopPod("cp-5", 0ms);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/pods/default/cp-5"));
  EXPECT_FALSE(runtime_->Outcome("cp-5").has_value());
}

TEST_F(ProcessPodRuntimeTest, ContainerThatExitsIsInCrashLoopBackOffWithItsExitCode) {
  json container = ControlPlane();
  container["args"].push_back("--no-such-flag");
  ASSERT_TRUE(runtime_->StartPod(Launch("cp-4", container)).ok());
  ASSERT_TRUE(WaitForPod("cp-4", [](const json& pod) {
    const json& c = Container(pod);
    return c.contains("state") && c["state"].contains("waiting") &&
           c["state"]["waiting"].value("reason", "") == "CrashLoopBackOff";
  }));
  json pod = *store_->Get("pods", "default", "cp-4");
  EXPECT_EQ(Container(pod)["lastState"]["terminated"]["exitCode"], 2);
  EXPECT_FALSE(Container(pod)["ready"].get<bool>());
  EXPECT_THAT(*runtime_->Logs("default", "cp-4", ""), HasSubstr("no-such-flag"));
  // It comes back after its back-off (and fails again): the restart count grows.
  EXPECT_TRUE(WaitForPod("cp-4", [](const json& pod) {
    return Container(pod).value("restartCount", 0) >= 2;
  }));
}

class ProcessPodRuntimeRefreshTest : public ProcessPodRuntimeTest {
 protected:
  void SetUp() override {
    token_refresh_ = 300ms;
    ProcessPodRuntimeTest::SetUp();
  }
};

TEST_F(ProcessPodRuntimeRefreshTest, MountedTokenIsRefreshedAndStaysValid) {
  ASSERT_TRUE(runtime_->StartPod(Launch("cp-8", ControlPlane())).ok());
  const std::string token_path = dir_.path() + "/pods/default/cp-8/serviceaccount/token";
  const std::string first = testing::ReadFile(token_path);
  ASSERT_FALSE(first.empty());
  // The prober rewrites it within a period or two; the file is what is waited on.
  std::string now = first;
  for (auto deadline = std::chrono::steady_clock::now() + 10s;
       now == first && std::chrono::steady_clock::now() < deadline;
       std::this_thread::sleep_for(50ms)) {
    now = testing::ReadFile(token_path);
  }
  EXPECT_NE(now, first);
  EXPECT_TRUE(WaitForPod("cp-8", [](const json& pod) { return Container(pod).value("ready", false); }));
}

TEST_F(ProcessPodRuntimeTest, WhatCannotStartSaysWhy) {
  // No such ServiceAccount: the token cannot be mounted.
  PodLaunch launch = Launch("cp-5", ControlPlane());
  launch.pod["spec"]["serviceAccountName"] = "ghost";
  absl::Status started = runtime_->StartPod(launch);
  ASSERT_FALSE(started.ok());
  EXPECT_THAT(started.message(),
              HasSubstr("cannot mount the token of serviceaccount default/ghost"));
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/pods/default/cp-5"));
  // Two containers.
  launch = Launch("cp-6", ControlPlane());
  launch.pod["spec"]["containers"].push_back(ControlPlane());
  EXPECT_THAT(runtime_->CanRun(launch.pod).message(), HasSubstr("exactly one container"));
  // A command that is not the entrypoint.
  json container = ControlPlane();
  container["command"] = {"/bin/sh"};
  started = runtime_->StartPod(Launch("cp-7", container));
  EXPECT_THAT(started.message(), HasSubstr("is not in podlb's image"));
}

}  // namespace
}  // namespace podlb::sandbox
