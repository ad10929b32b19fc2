// Field lists follow the Kubernetes 1.32 API reference (k8s.io/api); patch metadata follows the
// patchStrategy/patchMergeKey struct tags there. Go type names in decode errors are the last
// segment of a definition's name, in package "v1", as the real decoder prints them.
#include "sandbox/apiserver/object_schemas.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

constexpr char kMeta[] = "io.k8s.apimachinery.pkg.apis.meta.v1.";
constexpr char kCore[] = "io.k8s.api.core.v1.";

json Ref(const std::string& definition) { return {{"$ref", "#/definitions/" + definition}}; }
json Str() { return {{"type", "string"}}; }
json Int32() { return {{"type", "integer"}, {"format", "int32"}}; }
json Int64() { return {{"type", "integer"}, {"format", "int64"}}; }
json Bool() { return {{"type", "boolean"}}; }
// Anything: a nested struct the stand-in does not spell out.
json AnyObject() { return {{"type", "object"}}; }
// intstr.IntOrString, as the real document writes it.
json IntOrString() { return {{"type", "string"}, {"format", "int-or-string"}}; }
json StringMap() { return {{"type", "object"}, {"additionalProperties", Str()}}; }
json ArrayOf(json items) { return {{"type", "array"}, {"items", std::move(items)}}; }
json Strings() { return ArrayOf(Str()); }
// A list merged element by element on `key` by strategic merge patch.
json MergeList(json items, const std::string& key, const std::string& strategy = "merge") {
  json list = ArrayOf(std::move(items));
  list["x-kubernetes-patch-merge-key"] = key;
  list["x-kubernetes-patch-strategy"] = strategy;
  return list;
}
json Struct(json properties, json required = json::array()) {
  json schema = {{"type", "object"}, {"properties", std::move(properties)}};
  if (!required.empty()) schema["required"] = std::move(required);
  return schema;
}

json ObjectMeta() {
  json finalizers = Strings();
  finalizers["x-kubernetes-patch-strategy"] = "merge";
  return Struct({{"annotations", StringMap()},
                 {"creationTimestamp", {{"type", "string"}, {"format", "date-time"}}},
                 {"deletionGracePeriodSeconds", Int64()},
                 {"deletionTimestamp", {{"type", "string"}, {"format", "date-time"}}},
                 {"finalizers", finalizers},
                 {"generateName", Str()},
                 {"generation", Int64()},
                 {"labels", StringMap()},
                 {"managedFields", ArrayOf(AnyObject())},
                 {"name", Str()},
                 {"namespace", Str()},
                 {"ownerReferences", MergeList(AnyObject(), "uid")},
                 {"resourceVersion", Str()},
                 {"selfLink", Str()},
                 {"uid", Str()}});
}

json Container() {
  return Struct(
      {{"args", Strings()},
       {"command", Strings()},
       {"env", MergeList(Ref(std::string(kCore) + "EnvVar"), "name")},
       {"envFrom", ArrayOf(AnyObject())},
       {"image", Str()},
       {"imagePullPolicy", Str()},
       {"lifecycle", AnyObject()},
       {"livenessProbe", AnyObject()},
       {"name", Str()},
       {"ports", MergeList(Ref(std::string(kCore) + "ContainerPort"), "containerPort")},
       {"readinessProbe", AnyObject()},
       {"resizePolicy", ArrayOf(AnyObject())},
       {"resources", AnyObject()},
       {"restartPolicy", Str()},
       {"securityContext", AnyObject()},
       {"startupProbe", AnyObject()},
       {"stdin", Bool()},
       {"stdinOnce", Bool()},
       {"terminationMessagePath", Str()},
       {"terminationMessagePolicy", Str()},
       {"tty", Bool()},
       {"volumeDevices", MergeList(AnyObject(), "devicePath")},
       {"volumeMounts", MergeList(Ref(std::string(kCore) + "VolumeMount"), "mountPath")},
       {"workingDir", Str()}},
      {"name"});
}

json Volume() {
  json properties = {{"name", Str()}};
  for (const char* source :
       {"awsElasticBlockStore", "azureDisk", "azureFile", "cephfs", "cinder", "configMap", "csi",
        "downwardAPI", "emptyDir", "ephemeral", "fc", "flexVolume", "flocker", "gcePersistentDisk",
        "gitRepo", "glusterfs", "hostPath", "image", "iscsi", "nfs", "persistentVolumeClaim",
        "photonPersistentDisk", "portworxVolume", "projected", "quobyte", "rbd", "scaleIO",
        "secret", "storageos", "vsphereVolume"}) {
    properties[source] = AnyObject();
  }
  return Struct(properties, {"name"});
}

json PodSpec() {
  std::string core = kCore;
  return Struct(
      {{"activeDeadlineSeconds", Int64()},
       {"affinity", AnyObject()},
       {"automountServiceAccountToken", Bool()},
       {"containers", MergeList(Ref(core + "Container"), "name")},
       {"dnsConfig", AnyObject()},
       {"dnsPolicy", Str()},
       {"enableServiceLinks", Bool()},
       {"ephemeralContainers", MergeList(AnyObject(), "name")},
       {"hostAliases", MergeList(AnyObject(), "ip")},
       {"hostIPC", Bool()},
       {"hostNetwork", Bool()},
       {"hostPID", Bool()},
       {"hostUsers", Bool()},
       {"hostname", Str()},
       {"imagePullSecrets", MergeList(AnyObject(), "name")},
       {"initContainers", MergeList(Ref(core + "Container"), "name")},
       {"nodeName", Str()},
       {"nodeSelector", StringMap()},
       {"os", AnyObject()},
       {"overhead", AnyObject()},
       {"preemptionPolicy", Str()},
       {"priority", Int32()},
       {"priorityClassName", Str()},
       {"readinessGates", ArrayOf(AnyObject())},
       {"resourceClaims", MergeList(AnyObject(), "name", "merge,retainKeys")},
       {"resources", AnyObject()},
       {"restartPolicy", Str()},
       {"runtimeClassName", Str()},
       {"schedulerName", Str()},
       {"schedulingGates", MergeList(AnyObject(), "name")},
       {"securityContext", AnyObject()},
       {"serviceAccount", Str()},
       {"serviceAccountName", Str()},
       {"setHostnameAsFQDN", Bool()},
       {"shareProcessNamespace", Bool()},
       {"subdomain", Str()},
       {"terminationGracePeriodSeconds", Int64()},
       {"tolerations", ArrayOf(AnyObject())},
       {"topologySpreadConstraints", MergeList(AnyObject(), "topologyKey")},
       {"volumes", MergeList(Ref(core + "Volume"), "name", "merge,retainKeys")}},
      {"containers"});
}

json BuildDefinitions() {
  std::string meta = kMeta;
  std::string core = kCore;
  std::string apps = "io.k8s.api.apps.v1.";
  std::string rbac = "io.k8s.api.rbac.v1.";
  json selector = Ref(meta + "LabelSelector");
  json template_spec = Ref(core + "PodTemplateSpec");
  json defs = {
      {meta + "ObjectMeta", ObjectMeta()},
      {meta + "LabelSelector",
       Struct({{"matchExpressions", ArrayOf(Ref(meta + "LabelSelectorRequirement"))},
               {"matchLabels", StringMap()}})},
      {meta + "LabelSelectorRequirement",
       Struct({{"key", Str()}, {"operator", Str()}, {"values", Strings()}}, {"key", "operator"})},
      {core + "PodTemplateSpec", Struct({{"metadata", Ref(meta + "ObjectMeta")},
                                         {"spec", Ref(core + "PodSpec")}})},
      {core + "PodSpec", PodSpec()},
      {core + "Container", Container()},
      {core + "ContainerPort", Struct({{"containerPort", Int32()},
                                       {"hostIP", Str()},
                                       {"hostPort", Int32()},
                                       {"name", Str()},
                                       {"protocol", Str()}},
                                      {"containerPort"})},
      {core + "EnvVar",
       Struct({{"name", Str()}, {"value", Str()}, {"valueFrom", AnyObject()}}, {"name"})},
      {core + "VolumeMount", Struct({{"mountPath", Str()},
                                     {"mountPropagation", Str()},
                                     {"name", Str()},
                                     {"readOnly", Bool()},
                                     {"recursiveReadOnly", Str()},
                                     {"subPath", Str()},
                                     {"subPathExpr", Str()}},
                                    {"mountPath", "name"})},
      {core + "Volume", Volume()},
      {core + "ServiceSpec",
       Struct({{"allocateLoadBalancerNodePorts", Bool()},
               {"clusterIP", Str()},
               {"clusterIPs", Strings()},
               {"externalIPs", Strings()},
               {"externalName", Str()},
               {"externalTrafficPolicy", Str()},
               {"healthCheckNodePort", Int32()},
               {"internalTrafficPolicy", Str()},
               {"ipFamilies", Strings()},
               {"ipFamilyPolicy", Str()},
               {"loadBalancerClass", Str()},
               {"loadBalancerIP", Str()},
               {"loadBalancerSourceRanges", Strings()},
               {"ports", MergeList(Ref(core + "ServicePort"), "port")},
               {"publishNotReadyAddresses", Bool()},
               {"selector", StringMap()},
               {"sessionAffinity", Str()},
               {"sessionAffinityConfig", AnyObject()},
               {"trafficDistribution", Str()},
               {"type", Str()}})},
      {core + "ServicePort", Struct({{"appProtocol", Str()},
                                     {"name", Str()},
                                     {"nodePort", Int32()},
                                     {"port", Int32()},
                                     {"protocol", Str()},
                                     {"targetPort", IntOrString()}},
                                    {"port"})},
      {core + "NodeSpec", Struct({{"configSource", AnyObject()},
                                  {"externalID", Str()},
                                  {"podCIDR", Str()},
                                  {"podCIDRs", Strings()},
                                  {"providerID", Str()},
                                  {"taints", ArrayOf(AnyObject())},
                                  {"unschedulable", Bool()}})},
      {core + "NamespaceSpec", Struct({{"finalizers", Strings()}})},
      {apps + "DeploymentSpec",
       Struct({{"minReadySeconds", Int32()},
               {"paused", Bool()},
               {"progressDeadlineSeconds", Int32()},
               {"replicas", Int32()},
               {"revisionHistoryLimit", Int32()},
               {"selector", selector},
               {"strategy", Ref(apps + "DeploymentStrategy")},
               {"template", template_spec}},
              {"selector", "template"})},
      {apps + "DeploymentStrategy",
       Struct({{"rollingUpdate", Struct({{"maxSurge", IntOrString()},
                                         {"maxUnavailable", IntOrString()}})},
               {"type", Str()}})},
      {apps + "DaemonSetSpec", Struct({{"minReadySeconds", Int32()},
                                       {"revisionHistoryLimit", Int32()},
                                       {"selector", selector},
                                       {"template", template_spec},
                                       {"updateStrategy", Ref(apps + "DaemonSetUpdateStrategy")}},
                                      {"selector", "template"})},
      {apps + "DaemonSetUpdateStrategy",
       Struct({{"rollingUpdate", Struct({{"maxSurge", IntOrString()},
                                         {"maxUnavailable", IntOrString()}})},
               {"type", Str()}})},
      {apps + "ReplicaSetSpec", Struct({{"minReadySeconds", Int32()},
                                        {"replicas", Int32()},
                                        {"selector", selector},
                                        {"template", template_spec}},
                                       {"selector"})},
      {"io.k8s.api.batch.v1.JobSpec", Struct({{"activeDeadlineSeconds", Int64()},
                                               {"backoffLimit", Int32()},
                                               {"backoffLimitPerIndex", Int32()},
                                               {"completionMode", Str()},
                                               {"completions", Int32()},
                                               {"managedBy", Str()},
                                               {"manualSelector", Bool()},
                                               {"maxFailedIndexes", Int32()},
                                               {"parallelism", Int32()},
                                               {"podFailurePolicy", AnyObject()},
                                               {"podReplacementPolicy", Str()},
                                               {"selector", selector},
                                               {"successPolicy", AnyObject()},
                                               {"suspend", Bool()},
                                               {"template", template_spec},
                                               {"ttlSecondsAfterFinished", Int32()}},
                                              {"template"})},
      {"io.k8s.api.policy.v1.PodDisruptionBudgetSpec",
       Struct({{"maxUnavailable", IntOrString()},
               {"minAvailable", IntOrString()},
               {"selector", selector},
               {"unhealthyPodEvictionPolicy", Str()}})},
      {rbac + "PolicyRule", Struct({{"apiGroups", Strings()},
                                    {"nonResourceURLs", Strings()},
                                    {"resourceNames", Strings()},
                                    {"resources", Strings()},
                                    {"verbs", Strings()}},
                                   {"verbs"})},
      {rbac + "RoleRef",
       Struct({{"apiGroup", Str()}, {"kind", Str()}, {"name", Str()}}, {"apiGroup", "kind", "name"})},
      {rbac + "Subject",
       Struct({{"apiGroup", Str()}, {"kind", Str()}, {"name", Str()}, {"namespace", Str()}},
              {"kind", "name"})},
  };
  // A PodDisruptionBudget's selector is replaced as a whole, never merged.
  defs["io.k8s.api.policy.v1.PodDisruptionBudgetSpec"]["properties"]["selector"]
      ["x-kubernetes-patch-strategy"] = "replace";
  // The spec's strategy is replaced as a whole when its type changes (retainKeys).
  defs[apps + "DeploymentSpec"]["properties"]["strategy"] = {
      {"$ref", "#/definitions/" + apps + "DeploymentStrategy"},
      {"x-kubernetes-patch-strategy", "retainKeys"}};
  json rules = ArrayOf(Ref(rbac + "PolicyRule"));
  // The top-level fields of each kind besides apiVersion, kind and metadata.
  auto kind_fields = [&](const ResourceType& type, json* required) -> json {
    const std::string& r = type.resource;
    if (r == "endpointslices") {
      *required = {"addressType", "endpoints"};
      return {{"addressType", Str()},
              {"endpoints", ArrayOf(AnyObject())},
              {"ports", ArrayOf(AnyObject())}};
    }
    if (r == "endpoints") return {{"subsets", ArrayOf(AnyObject())}};
    if (r == "services") return {{"spec", Ref(core + "ServiceSpec")}, {"status", AnyObject()}};
    if (r == "pods") return {{"spec", Ref(core + "PodSpec")}, {"status", AnyObject()}};
    if (r == "nodes") return {{"spec", Ref(core + "NodeSpec")}, {"status", AnyObject()}};
    if (r == "namespaces") {
      return {{"spec", Ref(core + "NamespaceSpec")}, {"status", AnyObject()}};
    }
    if (r == "serviceaccounts") {
      return {{"automountServiceAccountToken", Bool()},
              {"imagePullSecrets", ArrayOf(AnyObject())},
              {"secrets", MergeList(AnyObject(), "name")}};
    }
    if (r == "configmaps") {
      return {{"binaryData", StringMap()}, {"data", StringMap()}, {"immutable", Bool()}};
    }
    if (r == "events") {
      *required = {"metadata", "involvedObject"};
      return {{"action", Str()},          {"count", Int32()},
              {"eventTime", Str()},       {"firstTimestamp", Str()},
              {"involvedObject", AnyObject()}, {"lastTimestamp", Str()},
              {"message", Str()},         {"reason", Str()},
              {"related", AnyObject()},   {"reportingComponent", Str()},
              {"reportingInstance", Str()}, {"series", AnyObject()},
              {"source", AnyObject()},    {"type", Str()}};
    }
    if (r == "deployments") {
      return {{"spec", Ref(apps + "DeploymentSpec")}, {"status", AnyObject()}};
    }
    if (r == "daemonsets") return {{"spec", Ref(apps + "DaemonSetSpec")}, {"status", AnyObject()}};
    if (r == "replicasets") {
      return {{"spec", Ref(apps + "ReplicaSetSpec")}, {"status", AnyObject()}};
    }
    if (r == "jobs") return {{"spec", Ref("io.k8s.api.batch.v1.JobSpec")}, {"status", AnyObject()}};
    if (r == "controllerrevisions") {
      *required = {"revision"};
      return {{"data", AnyObject()}, {"revision", Int64()}};
    }
    if (r == "poddisruptionbudgets") {
      return {{"spec", Ref("io.k8s.api.policy.v1.PodDisruptionBudgetSpec")},
              {"status", AnyObject()}};
    }
    if (r == "clusterroles") return {{"aggregationRule", AnyObject()}, {"rules", rules}};
    if (r == "roles") return {{"rules", rules}};
    if (r == "clusterrolebindings" || r == "rolebindings") {
      *required = {"roleRef"};
      return {{"roleRef", Ref(rbac + "RoleRef")}, {"subjects", ArrayOf(Ref(rbac + "Subject"))}};
    }
    if (r == "selfsubjectaccessreviews") {
      *required = {"spec"};
      return {{"spec", AnyObject()}, {"status", AnyObject()}};
    }
    return {{"spec", AnyObject()}, {"status", AnyObject()}};
  };
  for (const auto& type : ServedResourceTypes()) {
    json required = json::array();
    json properties = kind_fields(type, &required);
    properties["apiVersion"] = Str();
    properties["kind"] = Str();
    properties["metadata"] = Ref(meta + "ObjectMeta");
    json definition = {{"type", "object"},
                       {"properties", properties},
                       {"x-kubernetes-group-version-kind",
                        {{{"group", type.group}, {"kind", type.kind}, {"version", type.version}}}}};
    if (!required.empty()) definition["required"] = required;
    defs[SchemaDefinitionName(type)] = definition;
  }
  return defs;
}

std::string GoTypeName(const json& schema) {
  if (schema.contains("$ref")) {
    std::string ref = schema["$ref"];
    return "v1." + ref.substr(ref.rfind('.') + 1);
  }
  std::string type = schema.value("type", "");
  std::string format = schema.value("format", "");
  if (format == "int-or-string") return "intstr.IntOrString";
  if (type == "integer") return format.empty() ? "int64" : format;
  if (type == "boolean") return "bool";
  if (type == "string") return "string";
  if (type == "array") return "[]" + GoTypeName(schema.value("items", json::object()));
  if (schema.contains("additionalProperties")) {
    return "map[string]" + GoTypeName(schema["additionalProperties"]);
  }
  return "map[string]interface {}";
}

// Go's name for what a JSON value is, as its decoder reports a mismatch.
std::string JsonKindName(const json& value) {
  if (value.is_string()) return "string";
  if (value.is_boolean()) return "bool";
  if (value.is_array()) return "array";
  if (value.is_object()) return "object";
  if (value.is_number_float()) return absl::StrCat("number ", value.dump());
  return "number";
}

struct DecodeContext {
  std::string struct_name;  // the innermost Go struct holding the field
  std::string path;         // json field names from the top, dot-separated
};

std::optional<std::string> CheckValue(const json& value, const json& raw_schema,
                                      const DecodeContext& context) {
  if (value.is_null()) return std::nullopt;
  const json& schema = ResolveSchema(raw_schema);
  std::string type = schema.value("type", "");
  std::string format = schema.value("format", "");
  auto mismatch = [&]() -> std::optional<std::string> {
    std::string where = context.struct_name.empty()
                            ? "value"
                            : absl::StrCat("Go struct field ", context.struct_name, ".",
                                           context.path);
    return absl::StrCat("json: cannot unmarshal ", JsonKindName(value), " into ", where,
                        " of type ", GoTypeName(raw_schema));
  };
  if (format == "int-or-string") {
    if (value.is_string() || value.is_number_integer() || value.is_number_unsigned()) {
      return std::nullopt;
    }
    return mismatch();
  }
  if (type == "string") return value.is_string() ? std::nullopt : mismatch();
  if (type == "boolean") return value.is_boolean() ? std::nullopt : mismatch();
  if (type == "integer") {
    if (value.is_number_integer() || value.is_number_unsigned()) return std::nullopt;
    if (value.is_number_float() && std::floor(value.get<double>()) == value.get<double>()) {
      return std::nullopt;
    }
    return mismatch();
  }
  if (type == "array") {
    if (!value.is_array()) return mismatch();
    for (const auto& item : value) {
      if (auto error = CheckValue(item, schema.value("items", json::object()), context)) {
        return error;
      }
    }
    return std::nullopt;
  }
  if (type == "object") {
    if (!value.is_object()) return mismatch();
    if (schema.contains("additionalProperties")) {
      // Go names the map field, not the key, in the error.
      for (const auto& [key, item] : value.items()) {
        if (auto error = CheckValue(item, schema["additionalProperties"], context)) return error;
      }
      return std::nullopt;
    }
    if (!schema.contains("properties")) return std::nullopt;
    std::string struct_name = context.struct_name;
    if (raw_schema.contains("$ref")) struct_name = GoTypeName(raw_schema).substr(3);
    for (const auto& [key, item] : value.items()) {
      const json* property = PropertySchema(schema, key);
      if (property == nullptr) continue;  // unknown fields are dropped, as without strict
      DecodeContext inner{struct_name,
                          absl::StrCat(context.path, context.path.empty() ? "" : ".", key)};
      if (auto error = CheckValue(item, schema["properties"][key], inner)) return error;
    }
  }
  return std::nullopt;
}

void FindMissing(const json& value, const json& raw_schema, const std::string& path,
                 std::vector<std::string>* missing) {
  const json& schema = ResolveSchema(raw_schema);
  if (value.is_array() && schema.value("type", "") == "array") {
    for (size_t i = 0; i < value.size(); ++i) {
      FindMissing(value[i], schema.value("items", json::object()),
                  absl::StrCat(path, "[", i, "]"), missing);
    }
    return;
  }
  if (!value.is_object() || !schema.contains("properties")) return;
  for (const auto& field : schema.value("required", json::array())) {
    std::string name = field.get<std::string>();
    auto it = value.find(name);
    // Present is enough for a list (EndpointSlice.endpoints may be empty); a string must not be
    // empty (a container's name, a roleRef's kind).
    bool empty = it == value.end() || it->is_null() ||
                 (it->is_string() && it->get<std::string>().empty());
    if (empty) missing->push_back(absl::StrCat(path, path.empty() ? "" : ".", name));
  }
  for (const auto& [key, item] : value.items()) {
    if (schema["properties"].contains(key)) {
      FindMissing(item, schema["properties"][key], absl::StrCat(path, path.empty() ? "" : ".", key),
                  missing);
    }
  }
}

}  // namespace

const json& SchemaDefinitions() {
  static const json* const kDefinitions = new json(BuildDefinitions());
  return *kDefinitions;
}

std::string SchemaDefinitionName(const ResourceType& type) {
  // The group's first label ("core" for the legacy group), as the real server names them.
  std::string package = type.group.empty() ? "core" : type.group.substr(0, type.group.find('.'));
  return "io.k8s.api." + package + "." + type.version + "." + type.kind;
}

const json& ResolveSchema(const json& schema) {
  auto ref = schema.find("$ref");
  if (ref == schema.end() || !ref->is_string()) return schema;
  std::string name = ref->get<std::string>().substr(std::string("#/definitions/").size());
  const json& definitions = SchemaDefinitions();
  auto it = definitions.find(name);
  return it == definitions.end() ? schema : *it;
}

const json* PropertySchema(const json& schema, const std::string& field) {
  const json& resolved = ResolveSchema(schema);
  auto properties = resolved.find("properties");
  if (properties == resolved.end()) return nullptr;
  auto it = properties->find(field);
  return it == properties->end() ? nullptr : &ResolveSchema(*it);
}

std::optional<std::string> DecodeError(const ResourceType& type, const json& object) {
  const json& definitions = SchemaDefinitions();
  auto it = definitions.find(SchemaDefinitionName(type));
  if (it == definitions.end()) return std::nullopt;
  auto error = CheckValue(object, *it, DecodeContext{type.kind, ""});
  if (!error) return std::nullopt;
  return absl::StrCat(type.kind, " in version \"", type.version, "\" cannot be handled as a ",
                      type.kind, ": ", *error);
}

std::vector<std::string> MissingRequiredFields(const ResourceType& type, const json& object) {
  std::vector<std::string> missing;
  const json& definitions = SchemaDefinitions();
  auto it = definitions.find(SchemaDefinitionName(type));
  if (it == definitions.end()) return missing;
  FindMissing(object, *it, "", &missing);
  // metadata is required on every kind but filled by the server; the name is checked apart.
  std::erase(missing, "metadata");
  return missing;
}

}  // namespace podlb::sandbox
