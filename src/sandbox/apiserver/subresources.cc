// PATCH (JSON merge patch, strategic merge patch, JSON patch, server-side apply), namespace
// deletion, and the subresources of the API-server stand-in: deployments/scale (autoscaling/v1
// Scale), pods/log, serviceaccounts/token (TokenRequest), and SelfSubjectAccessReview.
#include <ctime>
#include <variant>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "fmt/format.h"
#include "sandbox/apiserver/api_handler.h"
#include "sandbox/apiserver/object_schemas.h"
#include "sandbox/apiserver/object_validation.h"
#include "sandbox/apiserver/protobuf_body.h"
#include "sandbox/apiserver/strategic_merge_patch.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

constexpr int kPatchAttempts = 5;

std::string Rfc3339(std::time_t t) {
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// Applies `request`'s patch body to `current`, whose OpenAPI schema is `schema` (the strategic
// merge patch's list metadata); an ApiResponse on failure.
std::variant<json, ApiResponse> ApplyPatch(const json& current, const HttpRequest& request,
                                           const json& schema) {
  std::string content_type = request.Header("content-type");
  content_type = content_type.substr(0, content_type.find(';'));
  json patch;
  try {
    patch = json::parse(request.body);
  } catch (const json::exception& e) {
    return StatusResponse(400, "BadRequest",
                          fmt::format("the patch body is not valid JSON: {}", e.what()));
  }
  if (content_type == "application/strategic-merge-patch+json") {
    auto patched = StrategicMergePatch(current, patch, schema);
    if (!patched.ok()) {
      return StatusResponse(400, "BadRequest", std::string(patched.status().message()));
    }
    return *patched;
  }
  if (content_type == "application/merge-patch+json") {
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
                                    "application/apply-patch+yaml, "
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

// A request body in JSON, or in protobuf for the kinds protobuf_body.h reads; discarded JSON
// when neither decodes.
json ParseKindBody(const HttpRequest& request, const std::string& kind) {
  std::string content_type = request.Header("content-type");
  if (content_type.substr(0, content_type.find(';')) == kProtobufContentType) {
    auto decoded = DecodeProtobufBody(kind, request.body);
    return decoded.ok() ? *decoded : json(json::value_t::discarded);
  }
  return json::parse(request.body.empty() ? "{}" : request.body, nullptr, false);
}

const json& KindSchema(const ResourceType& type) {
  static const json* const kNone = new json(json::object());
  const json& definitions = SchemaDefinitions();
  auto it = definitions.find(SchemaDefinitionName(type));
  return it == definitions.end() ? *kNone : *it;
}

}  // namespace

ApiResponse ApiHandler::Patch(const HttpRequest& request, const ResourceRoute& route) {
  std::string content_type = request.Header("content-type");
  if (content_type.substr(0, content_type.find(';')) == "application/apply-patch+yaml") {
    return Apply(request, route);
  }
  // Like the real server, a patch that loses a race with another writer is re-applied to the
  // newer object; only a resourceVersion inside the patch itself can make it conflict.
  for (int attempt = 0;; ++attempt) {
    auto current = store_.Get(route.type->resource, route.ns, route.name);
    if (!current.ok()) return ErrorFor(current.status(), route);
    auto patched = ApplyPatch(*current, request, KindSchema(*route.type));
    if (auto* error = std::get_if<ApiResponse>(&patched)) return *error;
    json& object = std::get<json>(patched);
    if (!object.is_object() || !object.contains("metadata") || !object["metadata"].is_object() ||
        object["metadata"].value("name", "") != route.name) {
      return StatusResponse(422, "Invalid", "the patch may not change metadata.name");
    }
    if (auto refused = CheckWrite(route, object, route.name)) return *refused;
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
      static const json* const kScaleSchema = new json(json::object());
      auto patched = ApplyPatch(scale, request, *kScaleSchema);
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

ApiResponse ApiHandler::Apply(const HttpRequest& request, const ResourceRoute& route) {
  // Server-side apply, simplified: the applied configuration merges into the live object as a
  // strategic merge patch would (lists by their merge keys), or creates it. Field ownership
  // (managedFields) is not tracked, so a field dropped from the configuration is not removed.
  if (request.Query("fieldManager").empty()) {
    return StatusResponse(422, "Invalid",
                          "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: "
                          "is required for apply patch",
                          json{{"group", "meta.k8s.io"},
                               {"kind", "PatchOptions"},
                               {"causes",
                                {{{"reason", "FieldValueRequired"},
                                  {"message", "Required value: is required for apply patch"},
                                  {"field", "fieldManager"}}}}});
  }
  json applied = json::parse(request.body, nullptr, /*allow_exceptions=*/false);
  if (applied.is_discarded() || !applied.is_object()) {
    return StatusResponse(400, "BadRequest",
                          "the apply configuration must be a JSON object (YAML is accepted only "
                          "in its JSON form here)");
  }
  if (applied.value("kind", route.type->kind) != route.type->kind) {
    return StatusResponse(400, "BadRequest",
                          fmt::format("the kind of the applied configuration ({}) does not match "
                                      "the resource {} ({})",
                                      applied["kind"].dump(), route.type->resource,
                                      route.type->kind));
  }
  for (int attempt = 0;; ++attempt) {
    auto current = store_.Get(route.type->resource, route.ns, route.name);
    if (!current.ok() && current.status().code() == absl::StatusCode::kNotFound) {
      json object = applied;
      object["metadata"]["name"] = route.name;
      if (auto refused = CheckWrite(route, object, route.name)) return *refused;
      if (auto refused = CheckNamespaceAdmits(route, route.name)) return *refused;
      auto created = store_.Create(route.type->resource, route.ns, std::move(object));
      if (created.ok()) return {201, *created};
      if (created.status().code() != absl::StatusCode::kAlreadyExists ||
          attempt + 1 >= kPatchAttempts) {
        return FromStatus(created.status(), route, route.name);
      }
      continue;
    }
    if (!current.ok()) return ErrorFor(current.status(), route);
    json patch = applied;
    patch["metadata"].erase("resourceVersion");
    auto merged = StrategicMergePatch(*current, patch, KindSchema(*route.type));
    if (!merged.ok()) return StatusResponse(400, "BadRequest", std::string(merged.status().message()));
    if (auto refused = CheckWrite(route, *merged, route.name)) return *refused;
    auto updated = store_.Update(route.type->resource, route.ns, std::move(*merged));
    if (updated.ok()) return {200, *updated};
    if (updated.status().code() != absl::StatusCode::kAborted || attempt + 1 >= kPatchAttempts) {
      return ErrorFor(updated.status(), route);
    }
  }
}

absl::StatusOr<json> MutateNamespaceForDeletion(ResourceStore& store, const std::string& name) {
  for (int attempt = 0;; ++attempt) {
    auto ns = store.Get("namespaces", "", name);
    if (!ns.ok()) return ns.status();
    json& meta = (*ns)["metadata"];
    if (meta.contains("deletionTimestamp")) return *ns;  // already terminating
    meta["deletionTimestamp"] = Rfc3339(std::time(nullptr));
    meta["deletionGracePeriodSeconds"] = 0;
    (*ns)["spec"]["finalizers"] = {"kubernetes"};
    (*ns)["status"]["phase"] = "Terminating";
    auto updated = store.Update("namespaces", "", *ns);
    if (updated.ok() || updated.status().code() != absl::StatusCode::kAborted ||
        attempt + 1 >= kPatchAttempts) {
      return updated;
    }
  }
}

ApiResponse ApiHandler::PodLog(const HttpRequest& request, const ResourceRoute& route) {
  if (request.method != "GET") {
    return StatusResponse(405, "MethodNotAllowed",
                          "the server does not allow this method on the requested resource");
  }
  auto pod = store_.Get("pods", route.ns, route.name);
  if (!pod.ok()) return ErrorFor(pod.status(), route);
  std::string container = request.Query("container");
  const json& containers = (*pod)["spec"].value("containers", json::array());
  if (container.empty()) {
    if (containers.size() > 1) {
      std::vector<std::string> names;
      for (const auto& c : containers) names.push_back(c.value("name", ""));
      return StatusResponse(
          400, "BadRequest",
          fmt::format("a container name must be specified for pod {}, choose one of: [{}]",
                      route.name, absl::StrJoin(names, " ")));
    }
    if (!containers.empty()) container = containers[0].value("name", "");
  } else {
    bool found = false;
    for (const auto& c : containers) found |= c.value("name", "") == container;
    if (!found) {
      return StatusResponse(
          400, "BadRequest",
          fmt::format("container {} is not valid for pod {}", container, route.name));
    }
  }
  // kubectl logs --previous, --tail=N, --limit-bytes=N; -f is answered with what there is.
  const bool previous = request.Query("previous") == "true";
  std::optional<int64_t> tail_lines, limit_bytes;
  for (auto [name, value] : {std::pair{"tailLines", &tail_lines}, {"limitBytes", &limit_bytes}}) {
    std::string text = request.Query(name);
    if (text.empty()) continue;
    int64_t number = 0;
    if (!absl::SimpleAtoi(text, &number) || number < (std::string(name) == "tailLines" ? 0 : 1)) {
      return StatusResponse(
          422, "Invalid",
          fmt::format("PodLogOptions \"{}\" is invalid: {}: Invalid value: {}: must be {}",
                      route.name, name, text,
                      std::string(name) == "tailLines" ? "greater than or equal to 0"
                                                       : "greater than 0"));
    }
    *value = number;
  }
  // NotFound from the source (or no source): the container wrote nothing, and has no previous run.
  absl::StatusOr<std::string> logs =
      options_.pod_logs ? options_.pod_logs(route.ns, route.name, container, previous)
                        : absl::NotFoundError("no log source");
  std::string text;
  if (logs.status().code() == absl::StatusCode::kNotFound) {
    if (previous) {
      return StatusResponse(
          400, "BadRequest",
          fmt::format("previous terminated container \"{}\" in pod \"{}\" not found", container,
                      route.name));
    }
  } else if (!logs.ok()) {
    return StatusResponse(400, "BadRequest", std::string(logs.status().message()));
  } else {
    text = std::move(*logs);
  }
  if (tail_lines) {
    // The last N lines: count newlines back from the end (a final newline ends the last line).
    size_t at = text.size();
    if (at > 0 && text[at - 1] == '\n') --at;
    int64_t lines = 0;
    while (at > 0 && lines < *tail_lines) {
      if (text[at - 1] == '\n' && ++lines == *tail_lines) break;
      --at;
    }
    text = *tail_lines == 0 ? std::string() : text.substr(at);
  }
  if (limit_bytes && static_cast<int64_t>(text.size()) > *limit_bytes) {
    text.resize(static_cast<size_t>(*limit_bytes));
  }
  return {200, json(text), "text/plain"};
}

ApiResponse ApiHandler::TokenRequest(const HttpRequest& request, const ResourceRoute& route) {
  if (request.method != "POST") {
    return StatusResponse(405, "MethodNotAllowed",
                          "the server does not allow this method on the requested resource");
  }
  json body = ParseKindBody(request, "TokenRequest");
  if (body.is_discarded() || !body.is_object()) {
    return StatusResponse(400, "BadRequest", "the request body must be a TokenRequest object");
  }
  json spec = body.value("spec", json::object());
  if (!spec.is_object()) spec = json::object();
  int64_t seconds = 3600;
  if (spec.contains("expirationSeconds") && !spec["expirationSeconds"].is_null()) {
    if (!spec["expirationSeconds"].is_number_integer()) {
      return StatusResponse(400, "BadRequest",
                            "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: "
                            "json: cannot unmarshal " +
                                std::string(spec["expirationSeconds"].type_name()) +
                                " into Go struct field TokenRequestSpec.spec.expirationSeconds of "
                                "type int64");
    }
    seconds = spec["expirationSeconds"].get<int64_t>();
  }
  ResourceRoute token_route = route;
  if (seconds < 600 || seconds > int64_t{1} << 32) {
    std::string detail = seconds < 600 ? "may not specify a duration less than 10 minutes"
                                       : "may not specify a duration larger than 2^32 seconds";
    json details = {{"kind", "TokenRequest"},
                    {"group", "authentication.k8s.io"},
                    {"name", route.name},
                    {"causes",
                     {{{"reason", "FieldValueInvalid"},
                       {"message", fmt::format("Invalid value: {}: {}", seconds, detail)},
                       {"field", "spec.expirationSeconds"}}}}};
    return StatusResponse(
        422, "Invalid",
        fmt::format("TokenRequest.authentication.k8s.io \"{}\" is invalid: spec.expirationSeconds: "
                    "Invalid value: {}: {}",
                    route.name, seconds, detail),
        details);
  }
  auto account = store_.Get("serviceaccounts", route.ns, route.name);
  if (!account.ok()) return ErrorFor(account.status(), route);
  auto issued = authenticator_.Issue(*account, std::chrono::seconds(seconds));
  std::time_t now = std::time(nullptr);
  std::time_t expires = TokenAuthenticator::Clock::to_time_t(issued.expires);
  json audiences = spec.value("audiences", json::array());
  if (!audiences.is_array() || audiences.empty()) {
    audiences = {"https://kubernetes.default.svc.cluster.local"};
  }
  json response = {
      {"kind", "TokenRequest"},
      {"apiVersion", "authentication.k8s.io/v1"},
      {"metadata",
       {{"name", route.name}, {"namespace", route.ns}, {"creationTimestamp", Rfc3339(now)}}},
      {"spec",
       {{"audiences", audiences},
        {"expirationSeconds", seconds},
        {"boundObjectRef", spec.value("boundObjectRef", json())}}},
      {"status", {{"token", issued.token}, {"expirationTimestamp", Rfc3339(expires)}}}};
  return {201, response};
}

ApiResponse ApiHandler::SelfSubjectAccessReview(const HttpRequest& request, const UserInfo& user) {
  json review = ParseKindBody(request, "SelfSubjectAccessReview");
  if (review.is_discarded() || !review.is_object() || !review.contains("spec") ||
      !review["spec"].is_object()) {
    return StatusResponse(400, "BadRequest",
                          "the request body must be a SelfSubjectAccessReview with a spec");
  }
  const json& spec = review["spec"];
  RequestAttributes attributes;
  if (spec.contains("resourceAttributes") && spec["resourceAttributes"].is_object()) {
    const json& a = spec["resourceAttributes"];
    attributes.verb = a.value("verb", "");
    attributes.api_group = a.value("group", "");
    attributes.api_version = a.value("version", "");
    attributes.resource = a.value("resource", "");
    attributes.subresource = a.value("subresource", "");
    attributes.ns = a.value("namespace", "");
    attributes.name = a.value("name", "");
  } else if (spec.contains("nonResourceAttributes") && spec["nonResourceAttributes"].is_object()) {
    attributes.resource_request = false;
    attributes.verb = spec["nonResourceAttributes"].value("verb", "");
    attributes.path = spec["nonResourceAttributes"].value("path", "");
  } else {
    return StatusResponse(
        422, "Invalid",
        "SelfSubjectAccessReview.authorization.k8s.io \"\" is invalid: spec.resourceAttributes: "
        "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes "
        "must be specified");
  }
  AuthorizationDecision decision = authorizer_.Authorize(user, attributes);
  review["apiVersion"] = "authorization.k8s.io/v1";
  review["kind"] = "SelfSubjectAccessReview";
  review["metadata"] = {{"creationTimestamp", nullptr}};
  review["status"] = {{"allowed", decision.allowed}};
  if (!decision.reason.empty()) review["status"]["reason"] = decision.reason;
  return {201, review};
}

}  // namespace podlb::sandbox
