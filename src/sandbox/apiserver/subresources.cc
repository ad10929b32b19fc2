// PATCH (JSON merge patch, strategic merge patch treated as merge patch, JSON patch) and the
// deployments/scale subresource (autoscaling/v1 Scale) of the API-server stand-in.
#include <variant>

#include "absl/strings/str_join.h"
#include "fmt/format.h"
#include "sandbox/apiserver/api_handler.h"
#include "sandbox/apiserver/object_validation.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

constexpr int kPatchAttempts = 5;

// Applies `request`'s patch body to `current`; an ApiResponse on failure.
std::variant<json, ApiResponse> ApplyPatch(const json& current, const HttpRequest& request) {
  std::string content_type = request.Header("content-type");
  content_type = content_type.substr(0, content_type.find(';'));
  json patch;
  try {
    patch = json::parse(request.body);
  } catch (const json::exception& e) {
    return StatusResponse(400, "BadRequest",
                          fmt::format("the patch body is not valid JSON: {}", e.what()));
  }
  if (content_type == "application/merge-patch+json" ||
      content_type == "application/strategic-merge-patch+json") {
    if (!patch.is_object()) {
      return StatusResponse(400, "BadRequest", "a merge patch must be a JSON object");
    }
    json result = current;
    result.merge_patch(patch);
    return result;
  }
  if (content_type == "application/json-patch+json") {
    try {
      return current.patch(patch);
    } catch (const json::exception& e) {
      return StatusResponse(422, "Invalid", fmt::format("the JSON patch failed: {}", e.what()));
    }
  }
  return StatusResponse(415, "UnsupportedMediaType",
                        fmt::format("the body of the request was in an unknown format - accepted "
                                    "media types include: application/json-patch+json, "
                                    "application/merge-patch+json, "
                                    "application/strategic-merge-patch+json (got \"{}\")",
                                    content_type));
}

ApiResponse ErrorFor(const absl::Status& status, const ResourceRoute& route) {
  json details = {{"name", route.name}, {"kind", route.type->resource}};
  if (!route.type->group.empty()) details["group"] = route.type->group;
  std::string message(status.message());
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return StatusResponse(404, "NotFound", message, details);
    case absl::StatusCode::kAborted:
      return StatusResponse(409, "Conflict", message, details);
    case absl::StatusCode::kInvalidArgument:
      return StatusResponse(422, "Invalid", message, WithCauses(details, status, route));
    default:
      return StatusResponse(500, "InternalError", message);
  }
}

json ToScale(const json& deployment) {
  const json& meta = deployment["metadata"];
  json scale_meta = json::object();
  for (const char* key : {"name", "namespace", "uid", "resourceVersion", "creationTimestamp"}) {
    if (meta.contains(key)) scale_meta[key] = meta[key];
  }
  int64_t replicas = 1;
  std::string selector;
  if (deployment.contains("spec") && deployment["spec"].is_object()) {
    const json& spec = deployment["spec"];
    if (spec.contains("replicas") && spec["replicas"].is_number_integer())
      replicas = spec["replicas"];
    if (spec.contains("selector") && spec["selector"].contains("matchLabels") &&
        spec["selector"]["matchLabels"].is_object()) {
      std::vector<std::string> terms;
      for (const auto& [key, value] : spec["selector"]["matchLabels"].items()) {
        if (value.is_string()) terms.push_back(key + "=" + value.get<std::string>());
      }
      selector = absl::StrJoin(terms, ",");
    }
  }
  int64_t status_replicas = 0;
  if (deployment.contains("status") && deployment["status"].is_object() &&
      deployment["status"].contains("replicas") &&
      deployment["status"]["replicas"].is_number_integer()) {
    status_replicas = deployment["status"]["replicas"];
  }
  return {{"kind", "Scale"},
          {"apiVersion", "autoscaling/v1"},
          {"metadata", scale_meta},
          {"spec", {{"replicas", replicas}}},
          {"status", {{"replicas", status_replicas}, {"selector", selector}}}};
}

}  // namespace

ApiResponse ApiHandler::Patch(const HttpRequest& request, const ResourceRoute& route) {
  // Like the real server, a patch that loses a race with another writer is re-applied to the
  // newer object; only a resourceVersion inside the patch itself can make it conflict.
  for (int attempt = 0;; ++attempt) {
    auto current = store_.Get(route.type->resource, route.ns, route.name);
    if (!current.ok()) return ErrorFor(current.status(), route);
    auto patched = ApplyPatch(*current, request);
    if (auto* error = std::get_if<ApiResponse>(&patched)) return *error;
    json& object = std::get<json>(patched);
    if (!object.is_object() || !object.contains("metadata") || !object["metadata"].is_object() ||
        object["metadata"].value("name", "") != route.name) {
      return StatusResponse(422, "Invalid", "the patch may not change metadata.name");
    }
    auto updated = store_.Update(route.type->resource, route.ns, std::move(object));
    if (updated.ok()) return {200, *updated};
    if (updated.status().code() != absl::StatusCode::kAborted || attempt + 1 >= kPatchAttempts) {
      return ErrorFor(updated.status(), route);
    }
  }
}

ApiResponse ApiHandler::Scale(const HttpRequest& request, const ResourceRoute& route) {
  const std::string& method = request.method;
  for (int attempt = 0;; ++attempt) {
    auto deployment = store_.Get(route.type->resource, route.ns, route.name);
    if (!deployment.ok()) return ErrorFor(deployment.status(), route);
    json scale = ToScale(*deployment);
    if (method == "GET") return {200, scale};
    json wanted;
    if (method == "PUT") {
      try {
        wanted = json::parse(request.body);
      } catch (const json::exception& e) {
        return StatusResponse(400, "BadRequest",
                              fmt::format("the request body is not valid JSON: {}", e.what()));
      }
    } else if (method == "PATCH") {
      auto patched = ApplyPatch(scale, request);
      if (auto* error = std::get_if<ApiResponse>(&patched)) return *error;
      wanted = std::get<json>(patched);
    } else {
      return StatusResponse(405, "MethodNotAllowed",
                            "the server does not allow this method on the requested resource");
    }
    if (!wanted.is_object() || !wanted.contains("spec") || !wanted["spec"].is_object() ||
        !wanted["spec"].contains("replicas") || !wanted["spec"]["replicas"].is_number_integer() ||
        wanted["spec"]["replicas"].get<int64_t>() < 0) {
      return StatusResponse(422, "Invalid",
                            fmt::format("Scale.autoscaling \"{}\" is invalid: spec.replicas: "
                                        "Invalid value: must be a non-negative integer",
                                        route.name));
    }
    json updated_object = *deployment;
    updated_object["spec"]["replicas"] = wanted["spec"]["replicas"];
    bool pinned = wanted.contains("metadata") && wanted["metadata"].is_object() &&
                  wanted["metadata"].contains("resourceVersion") &&
                  wanted["metadata"]["resourceVersion"].is_string() &&
                  !wanted["metadata"]["resourceVersion"].get<std::string>().empty();
    if (pinned)
      updated_object["metadata"]["resourceVersion"] = wanted["metadata"]["resourceVersion"];
    auto updated = store_.Update(route.type->resource, route.ns, updated_object);
    if (updated.ok()) return {200, ToScale(*updated)};
    if (pinned || updated.status().code() != absl::StatusCode::kAborted ||
        attempt + 1 >= kPatchAttempts) {
      return ErrorFor(updated.status(), route);
    }
  }
}

}  // namespace podlb::sandbox
