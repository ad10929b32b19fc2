// ContainerPlan: a container of podlb's image read as the kubelet reads it: $(VAR) expansion,
// the downward API, ConfigMap keys, the entrypoint, probes with named ports, and a precise error
// for what the sandbox cannot run.
#include "sandbox/pods/container_plan.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

json Pod(const json& container) {
  return {{"metadata",
           {{"name", "cp-7d9f-abcde"},
            {"namespace", "podlb-system"},
            {"uid", "u-1"},
            {"labels", {{"app", "cp"}}}}},
          {"spec",
           {{"nodeName", "node-b"}, {"serviceAccountName", "podlb"}, {"containers", {container}}}},
          {"status", {{"podIP", "127.0.0.9"}, {"hostIP", "127.0.0.1"}}}};
}

class ContainerPlanTest : public ::testing::Test {
 protected:
  absl::StatusOr<ContainerPlan> Plan(const json& container) {
    return PlanContainer(Pod(container), container, store_);
  }
  ResourceStore store_;
};

TEST(ExpandKubernetesVariablesTest, ExpandsDefinedKeepsUndefinedAndEscapes) {
  std::map<std::string, std::string> vars = {{"POD_IP", "127.0.0.9"}, {"EMPTY", ""}};
  EXPECT_EQ(ExpandKubernetesVariables("--listen=$(POD_IP):18000", vars), "--listen=127.0.0.9:18000");
  EXPECT_EQ(ExpandKubernetesVariables("$(MISSING)x", vars), "$(MISSING)x");
  EXPECT_EQ(ExpandKubernetesVariables("$$(POD_IP)", vars), "$(POD_IP)");
  EXPECT_EQ(ExpandKubernetesVariables("a$(EMPTY)b", vars), "ab");
  EXPECT_EQ(ExpandKubernetesVariables("$(unclosed", vars), "$(unclosed");
  EXPECT_EQ(ExpandKubernetesVariables("cost $5", vars), "cost $5");
}

TEST_F(ContainerPlanTest, DownwardApiAndArgsOfTheNodeProxyManifest) {
  json container = json::parse(R"({
    "name": "proxy", "image": "localhost/podlb:0.1.0",
    "args": ["proxy", "--listen=$(POD_IP):15001", "--admin=$(POD_IP):9901"],
    "env": [
      {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
      {"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
      {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
      {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
      {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
      {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
      {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory",
                                                          "divisor": "1Mi"}}},
      {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu"}}},
      {"name": "ADDR", "value": "$(POD_IP):15001"},
      {"name": "PODLB_ZONE", "value": ""}],
    "resources": {"requests": {"cpu": "100m"}, "limits": {"memory": "256Mi"}}})");
  auto plan = Plan(container);
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_EQ(plan->name, "proxy");
  EXPECT_THAT(plan->args,
              ElementsAre("proxy", "--listen=127.0.0.9:15001", "--admin=127.0.0.9:9901"));
  EXPECT_THAT(plan->env,
              ElementsAre("POD_IP=127.0.0.9", "NODE_NAME=node-b", "POD_NAME=cp-7d9f-abcde",
                          "NS=podlb-system", "APP=cp", "SA=podlb", "MEM=256", "CPU=1",
                          "ADDR=127.0.0.9:15001", "PODLB_ZONE="));
  EXPECT_FALSE(plan->readiness.has_value());
}

TEST_F(ContainerPlanTest, ConfigMapKeysAndEnvFrom) {
  ASSERT_TRUE(store_
                  .Create("configmaps", "podlb-system",
                          {{"metadata", {{"name", "settings"}}},
                           {"data", {{"ZONE", "z1"}, {"LEVEL", "debug"}}}})
                  .ok());
  json container = json::parse(R"({
    "name": "c", "args": ["control-plane"],
    "envFrom": [{"configMapRef": {"name": "settings"}, "prefix": "CFG_"}],
    "env": [
      {"name": "CFG_LEVEL", "value": "info"},
      {"name": "ZONE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "ZONE"}}},
      {"name": "GONE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "nope",
                                                         "optional": true}}}]})");
  auto plan = Plan(container);
  ASSERT_TRUE(plan.ok()) << plan.status();
  // env wins over envFrom; an optional missing key sets nothing.
  EXPECT_THAT(plan->env, ElementsAre("CFG_LEVEL=info", "CFG_ZONE=z1", "ZONE=z1"));

  container["env"][1]["valueFrom"]["configMapKeyRef"]["key"] = "absent";
  auto missing = Plan(container);
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(missing.status().message(),
              HasSubstr("couldn't find key absent in ConfigMap podlb-system/settings"));
}

TEST_F(ContainerPlanTest, EntrypointCommandIsAcceptedAndAnythingElseRefused) {
  auto plan = Plan(json::parse(R"({"name": "c", "command": ["/podlb", "control-plane"],
                                   "args": ["--listen", "$(POD_IP):18000"]})"));
  ASSERT_TRUE(plan.ok()) << plan.status();
  EXPECT_THAT(plan->args, ElementsAre("control-plane", "--listen", "$(POD_IP):18000"));

  auto shell = Plan(json::parse(R"({"name": "c", "command": ["/bin/sh", "-c", "podlb"]})"));
  ASSERT_FALSE(shell.ok());
  EXPECT_THAT(shell.status().message(),
              HasSubstr("spec.containers[c].command: \"/bin/sh\" is not in podlb's image"));
}

TEST_F(ContainerPlanTest, ProbesResolveNamedPortsAndTakeTheirDefaults) {
  json container = json::parse(R"({
    "name": "cp", "args": ["control-plane"],
    "ports": [{"name": "xds", "containerPort": 18000}, {"name": "admin", "containerPort": 18001}],
    "readinessProbe": {"httpGet": {"path": "/readyz", "port": "admin"}, "periodSeconds": 5},
    "livenessProbe": {"tcpSocket": {"port": 18000}, "failureThreshold": 2,
                      "initialDelaySeconds": 3}})");
  auto plan = Plan(container);
  ASSERT_TRUE(plan.ok()) << plan.status();
  ASSERT_TRUE(plan->readiness && plan->liveness);
  EXPECT_EQ(plan->readiness->kind, ProbeSpec::Kind::kHttpGet);
  EXPECT_EQ(plan->readiness->path, "/readyz");
  EXPECT_EQ(plan->readiness->port, 18001);
  EXPECT_EQ(plan->readiness->period, std::chrono::seconds(5));
  EXPECT_EQ(plan->readiness->timeout, std::chrono::seconds(1));
  EXPECT_EQ(plan->readiness->failure_threshold, 3);
  EXPECT_EQ(plan->liveness->kind, ProbeSpec::Kind::kTcpSocket);
  EXPECT_EQ(plan->liveness->port, 18000);
  EXPECT_EQ(plan->liveness->period, std::chrono::seconds(10));
  EXPECT_EQ(plan->liveness->initial_delay, std::chrono::seconds(3));
  EXPECT_EQ(plan->liveness->failure_threshold, 2);
}

TEST_F(ContainerPlanTest, WhatTheSandboxCannotRunIsNamedPrecisely) {
  struct Case {
    const char* container;
    const char* error;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"name": "c", "readinessProbe": {"exec": {"command": ["cat", "/tmp/ok"]}}})",
            "spec.containers[c].readinessProbe.exec: podlb's image has no shell"},
           {R"({"name": "c", "livenessProbe": {"httpGet": {"port": "nope"}}})",
            "spec.containers[c].livenessProbe.httpGet.port: Invalid value: \"nope\""},
           {R"({"name": "c", "readinessProbe": {"httpGet": {"port": 80, "scheme": "HTTPS"}}})",
            "\"HTTPS\" probes are not run by the sandbox"},
           {R"({"name": "c", "env": [{"name": "X", "valueFrom": {"fieldRef":
                {"fieldPath": "status.phase"}}}]})",
            "spec.containers[c].env[X].valueFrom.fieldRef.fieldPath: Unsupported value: "
            "\"status.phase\""},
           {R"({"name": "c", "env": [{"name": "X", "valueFrom": {"secretKeyRef":
                {"name": "s", "key": "k"}}}]})",
            "spec.containers[c].env[X].valueFrom: the sandbox reads fieldRef"},
           {R"({"name": "c", "args": ["x", 5]})", "every argument is a string"},
       }) {
    auto plan = Plan(json::parse(c.container));
    ASSERT_FALSE(plan.ok()) << c.container;
    EXPECT_THAT(plan.status().message(), HasSubstr(c.error)) << c.container;
  }
}

}  // namespace
}  // namespace podlb::sandbox
