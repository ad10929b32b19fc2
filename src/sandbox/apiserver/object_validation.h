// Field validation the API-server stand-in applies to every write of an object (create, replace,
// patch), before the store commits it, as the real server's registry strategies and validating
// admission do: today the sandbox's podlb.io/fault-* annotations, on Pods and on the pod templates
// of Deployments (whose pods inherit them). A rejected write answers 422 Invalid with one
// metav1.StatusCause per bad field. Pure functions, any thread.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

// One field the server refuses, as Kubernetes' field.Error reports it.
struct FieldCause {
  std::string field;    // metadata.annotations[podlb.io/fault-delay]
  std::string message;  // Invalid value: "abc": must be ...
  std::string reason = "FieldValueInvalid";  // FieldValueRequired, FieldValueNotSupported, ...
};

// Empty when `object` (of `type`) may be stored. The store runs it on every write.
std::vector<FieldCause> ValidateObject(const ResourceType& type, const nlohmann::json& object);

// What the real server's validation refuses in a write through the API (create, replace, patch,
// apply), on top of ValidateObject: the required fields of object_schemas.h, and per kind the
// checks a user meets first (a Deployment's selector matching its template, containers with
// an image, port ranges, a binding's roleRef kind, a ServiceAccount subject's namespace, a
// Job's restartPolicy, counts and selector).
std::vector<FieldCause> ValidateForApi(const ResourceType& type, const nlohmann::json& object);

// What an update may not change, given the object as stored (`current`): a Job's pod template,
// selector and completionMode ("field is immutable"). The store runs it on every update.
std::vector<FieldCause> ValidateUpdate(const ResourceType& type, const nlohmann::json& current,
                                       const nlohmann::json& updated);

// InvalidArgument worded as the real server words it ("Pod \"x\" is invalid: FIELD: MESSAGE",
// "Deployment.apps \"x\" is invalid: ..."),
// with the causes attached for the Status body (see StatusCausesOf).
absl::Status InvalidObjectError(const ResourceType& type, const std::string& name,
                                const std::vector<FieldCause>& causes);

// The causes InvalidObjectError attached, as a JSON array of metav1.StatusCause; null if none.
nlohmann::json StatusCausesOf(const absl::Status& status);

}  // namespace podlb::sandbox
