#include "sandbox/apiserver/object_validation.h"

#include <map>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sandbox/apiserver/json_path.h"
#include "sandbox/apiserver/object_schemas.h"
#include "sandbox/pods/pod_fault.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

// Where InvalidObjectError keeps the causes on the absl::Status (a payload, as gRPC carries
// google.rpc.Status details), so the store's error reaches the HTTP layer with its structure.
constexpr char kCausesPayload[] = "podlb.io/sandbox/status-causes";

// Kubernetes quotes string values in "Invalid value" and prints others as they are.
std::string InvalidValue(const json& value, const std::string& detail) {
  return absl::StrCat("Invalid value: ", value.dump(), ": ", detail);
}

// The fault annotations of one ObjectMeta found at `path` ("metadata", "spec.template.metadata").
void ValidateFaultAnnotations(const json& meta, const std::string& path,
                              std::vector<FieldCause>* causes) {
  if (!meta.is_object()) return;
  auto annotations = meta.find("annotations");
  if (annotations == meta.end() || !annotations->is_object()) return;
  auto field = [&](const std::string& key) {
    return absl::StrCat(path, ".annotations[", key, "]");
  };
  std::map<std::string, std::string> values;
  for (const std::string& key : PodFaultAnnotationKeys()) {
    auto it = annotations->find(key);
    if (it == annotations->end() || it->is_null()) continue;
    if (!it->is_string()) {
      causes->push_back({field(key), InvalidValue(*it, "must be a string")});
      continue;
    }
    values[key] = it->get<std::string>();
  }
  // The pod runtime applies the same parse; what passes here is what a pod can do.
  for (const auto& violation : FindPodFaultViolations(values)) {
    causes->push_back(
        {field(violation.annotation), InvalidValue(violation.value, violation.detail)});
  }
}

// Go's %#v of a map[string]string, as "selector does not match" prints the labels.
std::string GoStringMap(const json& labels) {
  std::vector<std::string> entries;
  if (labels.is_object()) {
    for (const auto& [key, value] : labels.items()) {
      entries.push_back(absl::StrCat(json(key).dump(), ":", value.dump()));
    }
  }
  return absl::StrCat("map[string]string{", absl::StrJoin(entries, ", "), "}");
}

bool SelectorMatches(const json& selector, const json& labels) {
  const json& match = At(selector, {"matchLabels"});
  if (match.is_object()) {
    for (const auto& [key, value] : match.items()) {
      if (!labels.is_object() || !labels.contains(key) || labels[key] != value) return false;
    }
  }
  const json& expressions = At(selector, {"matchExpressions"});
  if (expressions.is_array()) {
    for (const auto& e : expressions) {
      std::string key = e.value("key", "");
      std::string op = e.value("operator", "");
      bool has = labels.is_object() && labels.contains(key);
      auto in_values = [&] {
        if (!has || !e.contains("values") || !e["values"].is_array()) return false;
        for (const auto& v : e["values"]) {
          if (v == labels[key]) return true;
        }
        return false;
      };
      if ((op == "In" && !in_values()) || (op == "NotIn" && in_values()) ||
          (op == "Exists" && !has) || (op == "DoesNotExist" && has)) {
        return false;
      }
    }
  }
  return true;
}

void ValidateContainers(const json& pod_spec, const std::string& path,
                        std::vector<FieldCause>* causes) {
  const json& containers = At(pod_spec, {"containers"});
  if (containers.is_array() && containers.empty()) {
    causes->push_back({path + ".containers", "Required value", "FieldValueRequired"});
  }
  for (const char* list : {"initContainers", "containers"}) {
    const json& items = At(pod_spec, {list});
    if (!items.is_array()) continue;
    for (size_t i = 0; i < items.size(); ++i) {
      std::string at = absl::StrCat(path, ".", list, "[", i, "]");
      const json& image = At(items[i], {"image"});
      if (!image.is_string() || image.get<std::string>().empty()) {
        causes->push_back({at + ".image", "Required value", "FieldValueRequired"});
      }
      const json& ports = At(items[i], {"ports"});
      for (size_t p = 0; ports.is_array() && p < ports.size(); ++p) {
        const json& number = At(ports[p], {"containerPort"});
        if (number.is_number_integer() && (number.get<int64_t>() < 1 || number.get<int64_t>() > 65535)) {
          causes->push_back({absl::StrCat(at, ".ports[", p, "].containerPort"),
                             InvalidValue(number, "must be between 1 and 65535, inclusive")});
        }
      }
    }
  }
}

// Deployments, DaemonSets and ReplicaSets: a selector that selects the template's own labels.
void ValidateWorkload(const json& object, std::vector<FieldCause>* causes) {
  const json& spec = At(object, {"spec"});
  const json& selector = At(spec, {"selector"});
  const json& labels = At(spec, {"template", "metadata", "labels"});
  if (selector.is_object()) {
    if (At(selector, {"matchLabels"}).empty() && At(selector, {"matchExpressions"}).empty()) {
      causes->push_back({"spec.selector", "Invalid value: \"null\": empty selector is invalid for "
                                          "deployment"});
    } else if (spec.contains("template") && !SelectorMatches(selector, labels)) {
      causes->push_back({"spec.template.metadata.labels",
                         absl::StrCat("Invalid value: ", GoStringMap(labels),
                                      ": `selector` does not match template `labels`")});
    }
  }
  const json& replicas = At(spec, {"replicas"});
  if (replicas.is_number_integer() && replicas.get<int64_t>() < 0) {
    causes->push_back({"spec.replicas", InvalidValue(replicas, "must be greater than or equal to 0")});
  }
  if (At(spec, {"template"}).is_object()) {
    ValidateContainers(At(spec, {"template", "spec"}), "spec.template.spec", causes);
    // Their pods run until deleted; a pod that finished would never be replaced.
    const json& restart = At(spec, {"template", "spec", "restartPolicy"});
    if (restart.is_string() && restart != "Always") {
      causes->push_back({"spec.template.spec.restartPolicy",
                         absl::StrCat("Unsupported value: ", restart.dump(),
                                      ": supported values: \"Always\""),
                         "FieldValueNotSupported"});
    }
  }
}

void NonNegative(const json& spec, const char* field, std::vector<FieldCause>* causes) {
  const json& value = At(spec, {field});
  if (value.is_number_integer() && value.get<int64_t>() < 0) {
    causes->push_back({absl::StrCat("spec.", field),
                       InvalidValue(value, "must be greater than or equal to 0")});
  }
}

// batch/v1 Jobs, as the real server's job strategy validates them (pkg/apis/batch/validation).
// On create the selector is generated later, in the store (job_defaults.h), once the Job has
// its uid; here a selector the user wrote without manualSelector is refused, as the real
// server refuses one that differs from the generated one.
void ValidateJob(const json& object, std::vector<FieldCause>* causes) {
  const json& spec = At(object, {"spec"});
  for (const char* field : {"parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                            "ttlSecondsAfterFinished"}) {
    NonNegative(spec, field, causes);
  }
  const json& mode = At(spec, {"completionMode"});
  if (mode.is_string() && mode != "NonIndexed" && mode != "Indexed") {
    causes->push_back({"spec.completionMode",
                       absl::StrCat("Unsupported value: ", mode.dump(),
                                    ": supported values: \"NonIndexed\", \"Indexed\""),
                       "FieldValueNotSupported"});
  }
  const json& selector = At(spec, {"selector"});
  const json& labels = At(spec, {"template", "metadata", "labels"});
  if (At(spec, {"manualSelector"}) == true) {
    if (!selector.is_object()) {
      causes->push_back({"spec.selector", "Required value", "FieldValueRequired"});
    } else if (!SelectorMatches(selector, labels)) {
      causes->push_back({"spec.template.metadata.labels",
                         absl::StrCat("Invalid value: ", GoStringMap(labels),
                                      ": `selector` does not match template `labels`")});
    }
  } else if (selector.is_object() && !selector.empty() &&
             !At(object, {"metadata", "uid"}).is_string()) {
    causes->push_back({"spec.selector", InvalidValue(selector, "`selector` not auto-generated")});
  }
  const json& pod_template = At(spec, {"template"});
  if (!pod_template.is_object()) return;  // required: MissingRequiredFields said so
  const json& pod_spec = At(pod_template, {"spec"});
  ValidateContainers(pod_spec, "spec.template.spec", causes);
  // The pod template's restartPolicy defaults to Always, which a Job cannot run.
  const json& restart = At(pod_spec, {"restartPolicy"});
  std::string policy = restart.is_string() ? restart.get<std::string>() : "Always";
  if (policy != "OnFailure" && policy != "Never") {
    causes->push_back({"spec.template.spec.restartPolicy",
                       absl::StrCat("Unsupported value: ", json(policy).dump(),
                                    ": supported values: \"OnFailure\", \"Never\""),
                       "FieldValueNotSupported"});
  }
}

}  // namespace

std::vector<FieldCause> ValidateUpdate(const ResourceType& type, const json& current,
                                       const json& updated) {
  std::vector<FieldCause> causes;
  if (type.group != "batch" || type.resource != "jobs") return causes;
  // What the real server keeps fixed once a Job exists (ValidateJobSpecUpdate).
  for (const char* field : {"template", "selector", "completionMode"}) {
    const json& before = At(current, {"spec", field});
    const json& after = At(updated, {"spec", field});
    if (before != after) {
      causes.push_back(
          {absl::StrCat("spec.", field), InvalidValue(after, "field is immutable")});
    }
  }
  return causes;
}

std::vector<FieldCause> ValidateForApi(const ResourceType& type, const json& object) {
  std::vector<FieldCause> causes;
  for (const auto& field : MissingRequiredFields(type, object)) {
    causes.push_back({field, "Required value", "FieldValueRequired"});
  }
  const std::string& r = type.resource;
  if (type.group == "apps" && (r == "deployments" || r == "daemonsets" || r == "replicasets")) {
    ValidateWorkload(object, &causes);
  } else if (type.group == "batch" && r == "jobs") {
    ValidateJob(object, &causes);
  } else if (r == "pods") {
    ValidateContainers(At(object, {"spec"}), "spec", &causes);
  } else if (r == "services") {
    const json& ports = At(object, {"spec", "ports"});
    for (size_t i = 0; ports.is_array() && i < ports.size(); ++i) {
      const json& port = At(ports[i], {"port"});
      if (port.is_number_integer() && (port.get<int64_t>() < 1 || port.get<int64_t>() > 65535)) {
        causes.push_back({absl::StrCat("spec.ports[", i, "].port"),
                          InvalidValue(port, "must be between 1 and 65535, inclusive")});
      }
      if (ports.size() > 1 && !At(ports[i], {"name"}).is_string()) {
        causes.push_back({absl::StrCat("spec.ports[", i, "].name"), "Required value",
                          "FieldValueRequired"});
      }
    }
  } else if (r == "clusterrolebindings" || r == "rolebindings") {
    const json& kind = At(object, {"roleRef", "kind"});
    bool cluster = r == "clusterrolebindings";
    if (kind.is_string() && !kind.get<std::string>().empty() && kind != "ClusterRole" &&
        (cluster || kind != "Role")) {
      causes.push_back({"roleRef.kind",
                        absl::StrCat("Unsupported value: ", kind.dump(), ": supported values: ",
                                     cluster ? "\"ClusterRole\"" : "\"Role\", \"ClusterRole\""),
                        "FieldValueNotSupported"});
    }
    const json& subjects = At(object, {"subjects"});
    for (size_t i = 0; subjects.is_array() && i < subjects.size(); ++i) {
      if (cluster && At(subjects[i], {"kind"}) == "ServiceAccount" &&
          !At(subjects[i], {"namespace"}).is_string()) {
        causes.push_back({absl::StrCat("subjects[", i, "].namespace"), "Required value",
                          "FieldValueRequired"});
      }
    }
  }
  return causes;
}

std::vector<FieldCause> ValidateObject(const ResourceType& type, const json& object) {
  std::vector<FieldCause> causes;
  if (!object.is_object()) return causes;
  if (type.group.empty() && type.resource == "pods") {
    ValidateFaultAnnotations(object.value("metadata", json()), "metadata", &causes);
  } else if (type.group == "apps" && type.resource == "deployments") {
    json template_meta = object.value("spec", json::object());
    template_meta =
        template_meta.is_object() ? template_meta.value("template", json::object()) : json();
    template_meta = template_meta.is_object() ? template_meta.value("metadata", json()) : json();
    ValidateFaultAnnotations(template_meta, "spec.template.metadata", &causes);
  }
  return causes;
}

absl::Status InvalidObjectError(const ResourceType& type, const std::string& name,
                                const std::vector<FieldCause>& causes) {
  std::vector<std::string> errors;
  json payload = json::array();
  for (const auto& cause : causes) {
    errors.push_back(absl::StrCat(cause.field, ": ", cause.message));
    payload.push_back(
        {{"reason", cause.reason}, {"message", cause.message}, {"field", cause.field}});
  }
  // Kubernetes' ErrorList: one error as it is, several in brackets.
  std::string list = errors.size() == 1 ? errors[0] : "[" + absl::StrJoin(errors, ", ") + "]";
  // The qualified kind, as apierrors.NewInvalid prints it: "Pod", "Deployment.apps".
  std::string kind = type.group.empty() ? type.kind : absl::StrCat(type.kind, ".", type.group);
  absl::Status status =
      absl::InvalidArgumentError(absl::StrCat(kind, " \"", name, "\" is invalid: ", list));
  status.SetPayload(kCausesPayload, absl::Cord(payload.dump()));
  return status;
}

json StatusCausesOf(const absl::Status& status) {
  auto payload = status.GetPayload(kCausesPayload);
  if (!payload) return nullptr;
  json causes = json::parse(std::string(*payload), nullptr, /*allow_exceptions=*/false);
  return causes.is_array() ? causes : json();
}

}  // namespace podlb::sandbox
