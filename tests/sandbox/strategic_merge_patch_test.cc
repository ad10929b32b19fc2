// Strategic merge patch with the schemas' patch metadata, on the shapes kubectl's client-side
// apply sends: containers merged by name, env by name, ports by containerPort, $patch: delete,
// $setElementOrder, $retainKeys, $deleteFromPrimitiveList, null deletes, replaced lists.
#include "sandbox/apiserver/strategic_merge_patch.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/object_schemas.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

const json& DeploymentSchema() {
  return SchemaDefinitions().at("io.k8s.api.apps.v1.Deployment");
}

json Deployment() {
  return json::parse(R"({
    "apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "cp", "labels": {"a": "1"}, "finalizers": ["x"]},
    "spec": {
      "replicas": 2,
      "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
      "template": {"metadata": {"labels": {"app": "cp"}}, "spec": {
        "containers": [
          {"name": "cp", "image": "podlb:1", "args": ["control-plane", "--a"],
           "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
           "ports": [{"containerPort": 18000, "name": "xds"}, {"containerPort": 18001, "name": "admin"}]},
          {"name": "side", "image": "side:1"}],
        "tolerations": [{"key": "k1"}, {"key": "k2"}]}}}})");
}

json Patch(const json& patch) {
  auto result = StrategicMergePatch(Deployment(), patch, DeploymentSchema());
  EXPECT_TRUE(result.ok()) << result.status();
  return result.ok() ? *result : json();
}

const json& Containers(const json& d) { return d["spec"]["template"]["spec"]["containers"]; }

TEST(StrategicMergePatchTest, ContainersMergeByNameKeepingWhatThePatchDoesNotName) {
  json d = Patch(json::parse(R"({"spec": {"template": {"spec": {
      "$setElementOrder/containers": [{"name": "cp"}, {"name": "side"}],
      "containers": [{"name": "cp", "args": ["control-plane", "--b"]}]}}}})"));
  ASSERT_EQ(Containers(d).size(), 2u);
  EXPECT_EQ(Containers(d)[0]["image"], "podlb:1");  // a merge patch would have lost it
  EXPECT_EQ(Containers(d)[0]["args"], json({"control-plane", "--b"}));  // args: replaced
  EXPECT_EQ(Containers(d)[1]["image"], "side:1");
  EXPECT_FALSE(d["spec"]["template"]["spec"].contains("$setElementOrder/containers"));
}

TEST(StrategicMergePatchTest, DeleteDirectiveRemovesOneElementByItsMergeKey) {
  json d = Patch(json::parse(R"({"spec": {"template": {"spec": {"containers": [
      {"name": "cp", "env": [{"name": "A", "$patch": "delete"}, {"name": "C", "value": "3"}],
       "ports": [{"containerPort": 18001, "$patch": "delete"}]},
      {"name": "side", "$patch": "delete"}]}}}})"));
  ASSERT_EQ(Containers(d).size(), 1u);
  EXPECT_EQ(Containers(d)[0]["env"],
            json::parse(R"([{"name": "B", "value": "2"}, {"name": "C", "value": "3"}])"));
  EXPECT_EQ(Containers(d)[0]["ports"], json::parse(R"([{"containerPort": 18000, "name": "xds"}])"));
}

TEST(StrategicMergePatchTest, SetElementOrderReordersTheMergedList) {
  json d = Patch(json::parse(R"({"spec": {"template": {"spec": {
      "$setElementOrder/containers": [{"name": "side"}, {"name": "cp"}]}}}})"));
  EXPECT_EQ(Containers(d)[0]["name"], "side");
  EXPECT_EQ(Containers(d)[1]["name"], "cp");
}

TEST(StrategicMergePatchTest, ListsWithoutAStrategyAreReplaced) {
  json d = Patch(json::parse(R"({"spec": {"template": {"spec": {"tolerations": [{"key": "k3"}]}}}})"));
  EXPECT_EQ(d["spec"]["template"]["spec"]["tolerations"], json::parse(R"([{"key": "k3"}])"));
}

TEST(StrategicMergePatchTest, NullDeletesAndMapsMerge) {
  json d = Patch(json::parse(R"({"metadata": {"labels": {"a": null, "b": "2"}},
                                 "spec": {"replicas": null}})"));
  EXPECT_EQ(d["metadata"]["labels"], json({{"b", "2"}}));
  EXPECT_FALSE(d["spec"].contains("replicas"));
}

TEST(StrategicMergePatchTest, RetainKeysDropsFieldsTheStrategyNoLongerHas) {
  json d = Patch(json::parse(R"({"spec": {"strategy": {"$retainKeys": ["type"],
                                                        "type": "Recreate"}}})"));
  EXPECT_EQ(d["spec"]["strategy"], json({{"type", "Recreate"}}));
}

TEST(StrategicMergePatchTest, PrimitiveMergeListsTakeTheUnionAndDeleteByValue) {
  json d = Patch(json::parse(R"({"metadata": {"finalizers": ["y", "x"]}})"));
  EXPECT_EQ(d["metadata"]["finalizers"], json({"x", "y"}));
  d = Patch(json::parse(R"({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}})"));
  EXPECT_EQ(d["metadata"]["finalizers"], json::array());
}

TEST(StrategicMergePatchTest, ReplaceDirectiveReplacesAList) {
  json d = Patch(json::parse(R"({"spec": {"template": {"spec": {"containers": [
      {"$patch": "replace"}, {"name": "only", "image": "only:1"}]}}}})"));
  EXPECT_EQ(Containers(d), json::parse(R"([{"name": "only", "image": "only:1"}])"));
}

TEST(StrategicMergePatchTest, MalformedPatchesAreRefused) {
  auto missing_key = StrategicMergePatch(
      Deployment(),
      json::parse(R"({"spec": {"template": {"spec": {"containers": [{"image": "x"}]}}}})"),
      DeploymentSchema());
  EXPECT_EQ(missing_key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(missing_key.status().message()),
              ::testing::HasSubstr("does not contain declared merge key: name"));
  auto unknown = StrategicMergePatch(Deployment(), json::parse(R"({"$patch": "explode"})"),
                                     DeploymentSchema());
  EXPECT_EQ(unknown.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(StrategicMergePatch(Deployment(), json::array(), DeploymentSchema()).ok());
}

}  // namespace
}  // namespace podlb::sandbox
