#include "sandbox/apiserver/object_validation.h"

#include <map>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
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

}  // namespace

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
        {{"reason", "FieldValueInvalid"}, {"message", cause.message}, {"field", cause.field}});
  }
  // Kubernetes' ErrorList: one error as it is, several in brackets.
  std::string list = errors.size() == 1 ? errors[0] : "[" + absl::StrJoin(errors, ", ") + "]";
  absl::Status status =
      absl::InvalidArgumentError(absl::StrCat(type.kind, " \"", name, "\" is invalid: ", list));
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
