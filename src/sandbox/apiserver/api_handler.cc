// Request routing, authentication and the object verbs of the API-server stand-in. Watch
// streaming lives in watch_stream.cc, lists in list_handler.cc, the scale subresource and patches
// in subresources.cc, the OpenAPI v2 document in openapi_v2.cc.
#include "sandbox/apiserver/api_handler.h"

#include <set>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/logging.h"
#include "fmt/format.h"
#include "sandbox/apiserver/discovery_documents.h"
#include "sandbox/apiserver/object_schemas.h"
#include "sandbox/apiserver/object_validation.h"
#include "sandbox/apiserver/openapi_v2.h"
#include "sandbox/apiserver/tables.h"

namespace podlb::sandbox {

using json = nlohmann::json;

std::string GroupResource(const ResourceType& type) {
  return type.group.empty() ? type.resource : type.resource + "." + type.group;
}

json Details(const ResourceRoute& route, const std::string& name) {
  json details = {{"kind", route.type->resource}};
  if (!name.empty()) details["name"] = name;
  if (!route.type->group.empty()) details["group"] = route.type->group;
  return details;
}

ApiResponse FromStatus(const absl::Status& status, const ResourceRoute& route,
                       const std::string& name) {
  std::string message(status.message());
  json details = Details(route, name);
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
      return StatusResponse(404, "NotFound", message, details);
    case absl::StatusCode::kAlreadyExists:
      return StatusResponse(409, "AlreadyExists", message, details);
    case absl::StatusCode::kAborted:
      return StatusResponse(409, "Conflict", message, details);
    case absl::StatusCode::kInvalidArgument:
      if (message.find(" is invalid: ") != std::string::npos) {
        return StatusResponse(422, "Invalid", message, WithCauses(details, status, route));
      }
      return StatusResponse(400, "BadRequest", message);
    case absl::StatusCode::kOutOfRange:
      return StatusResponse(410, "Expired", message);
    default:
      return StatusResponse(500, "InternalError", message);
  }
}

namespace {

absl::StatusOr<json> ParseBody(const HttpRequest& request) {
  try {
    json body = json::parse(request.body);
    if (!body.is_object()) {
      return absl::InvalidArgumentError("the request body must be a JSON object");
    }
    return body;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        fmt::format("the request body is not valid JSON: {}", e.what()));
  }
}

std::string MetaName(const json& object) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "";
  auto name = meta->find("name");
  return name != meta->end() && name->is_string() ? name->get<std::string>() : "";
}

}  // namespace

bool WantsTable(const HttpRequest& request) {
  return request.Header("accept").find("as=Table") != std::string::npos;
}

void ApiCounters::CountWatch(const std::string& resource) {
  absl::MutexLock lock(&mu_);
  ++watches_[resource];
}
void ApiCounters::CountList(const std::string& resource) {
  absl::MutexLock lock(&mu_);
  ++lists_[resource];
}
uint64_t ApiCounters::Watches(const std::string& resource) const {
  absl::MutexLock lock(&mu_);
  auto it = watches_.find(resource);
  return it == watches_.end() ? 0 : it->second;
}
uint64_t ApiCounters::Lists(const std::string& resource) const {
  absl::MutexLock lock(&mu_);
  auto it = lists_.find(resource);
  return it == lists_.end() ? 0 : it->second;
}

ApiResponse StatusResponse(int code, const std::string& reason, const std::string& message,
                           const json& details) {
  json body = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", json::object()},
               {"status", "Failure"}, {"message", message}, {"reason", reason},
               {"code", code}};
  if (!details.is_null()) body["details"] = details;
  return {code, body};
}

json WithCauses(json details, const absl::Status& status, const ResourceRoute& route) {
  json causes = StatusCausesOf(status);
  if (causes.is_null()) return details;
  details["kind"] = route.type->kind;
  details["causes"] = std::move(causes);
  return details;
}

bool FieldSelector::Parse(const std::string& text, FieldSelector* out, std::string* error) {
  out->terms_.clear();
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    std::string term(piece);
    Term t;
    size_t pos;
    if ((pos = term.find("!=")) != std::string::npos) {
      t = {term.substr(0, pos), false, term.substr(pos + 2)};
    } else if ((pos = term.find("==")) != std::string::npos) {
      t = {term.substr(0, pos), true, term.substr(pos + 2)};
    } else if ((pos = term.find('=')) != std::string::npos) {
      t = {term.substr(0, pos), true, term.substr(pos + 1)};
    } else {
      *error = fmt::format("invalid field selector \"{}\": expected field=value", text);
      return false;
    }
    // The fields the real server indexes for the kinds served here: metadata for all, what
    // kubectl describe asks of events (involvedObject.*) and of a node's pods (spec.nodeName,
    // status.phase).
    static const std::set<std::string>* const kFields = new std::set<std::string>{
        "metadata.name", "metadata.namespace", "involvedObject.kind",
        "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
        "involvedObject.apiVersion", "involvedObject.resourceVersion",
        "involvedObject.fieldPath", "reason", "reportingComponent", "type", "source",
        "spec.nodeName", "spec.serviceAccountName", "status.phase", "status.podIP",
        "spec.type"};
    if (kFields->count(t.field) == 0) {
      *error = fmt::format("\"{}\" is not a known field selector: only \"metadata.name\", "
                           "\"metadata.namespace\"",
                           t.field);
      return false;
    }
    out->terms_.push_back(std::move(t));
  }
  return true;
}

FieldSelector FieldSelector::NameEquals(const std::string& name) {
  FieldSelector selector;
  selector.terms_.push_back({"metadata.name", true, name});
  return selector;
}

std::string FieldSelector::RequiredName() const {
  for (const auto& term : terms_) {
    if (term.field == "metadata.name" && term.equals) return term.value;
  }
  return "";
}

bool FieldSelector::Matches(const json& object) const {
  for (const auto& term : terms_) {
    // "source" selects source.component on events, as the real server's field set names it.
    std::string field = term.field == "source" ? "source.component" : term.field;
    const json* node = &object;
    for (absl::string_view key : absl::StrSplit(field, '.')) {
      if (node == nullptr || !node->is_object()) {
        node = nullptr;
        break;
      }
      auto it = node->find(std::string(key));
      node = it == node->end() ? nullptr : &*it;
    }
    std::string actual = node != nullptr && node->is_string() ? node->get<std::string>() : "";
    if ((actual == term.value) != term.equals) return false;
  }
  return true;
}

ApiHandler::ApiHandler(const ApiServerOptions& options, ResourceStore& store, ApiCounters& counters,
                       WatchSupervisor& supervisor, TokenAuthenticator& authenticator,
                       const RbacAuthorizer& authorizer, std::string server_address)
    : options_(options),
      store_(store),
      counters_(counters),
      supervisor_(supervisor),
      authenticator_(authenticator),
      authorizer_(authorizer),
      server_address_(std::move(server_address)) {}

std::optional<ApiResponse> ApiHandler::Authorize(const HttpRequest& request,
                                                 const RequestAttributes& attributes,
                                                 UserInfo* user) const {
  std::string auth = request.Header("authorization");
  std::string token;
  if (auth.size() > 7 &&
      (auth.compare(0, 7, "Bearer ") == 0 || auth.compare(0, 7, "bearer ") == 0)) {
    token = auth.substr(7);
  }
  std::optional<UserInfo> authenticated = authenticator_.Authenticate(token);
  if (!authenticated) {
    if (authenticator_.HasStaticTokens()) return StatusResponse(401, "Unauthorized", "Unauthorized");
    // No tokens configured: an open server, every caller the admin (a ServiceAccount token
    // issued by it still authenticates as its account, so RBAC can be tested without tokens).
    authenticated = UserInfo{"system:admin", {"system:masters", "system:authenticated"}};
  }
  *user = std::move(*authenticated);
  AuthorizationDecision decision = authorizer_.Authorize(*user, attributes);
  if (decision.allowed) return std::nullopt;
  json details = nullptr;
  if (attributes.resource_request) {
    details = {{"kind", attributes.resource}};
    if (!attributes.name.empty()) details["name"] = attributes.name;
    if (!attributes.api_group.empty()) details["group"] = attributes.api_group;
  }
  return StatusResponse(403, "Forbidden", ForbiddenMessage(*user, attributes, decision.reason),
                        details);
}

std::optional<ApiResponse> ApiHandler::AuthorizePath(const HttpRequest& request) const {
  RequestAttributes attributes;
  attributes.resource_request = false;
  attributes.verb = request.method == "GET" || request.method == "HEAD"
                        ? "get"
                        : absl::AsciiStrToLower(request.method);
  attributes.path = request.path;
  UserInfo user;
  return Authorize(request, attributes, &user);
}

bool ApiHandler::Serve(const HttpRequest& request, HttpConnection& connection) {
  if (request.path == "/openapi/v2") return ServeOpenApiV2(request, connection);
  bool watch = false;
  ResourceRoute route;
  ApiResponse response = Route(request, &watch, &route);
  if (watch) return Watch(request, route, connection);
  if (response.code >= 400) {
    LogDebug("apiserver: {} {} -> {}", request.method, request.target, response.code);
  }
  if (!response.content_type.empty()) {
    return connection.WriteResponse(response.code, response.content_type,
                                    response.body.get<std::string>(), request.keep_alive) &&
           request.keep_alive;
  }
  std::string body = response.body.dump();
  return connection.WriteResponse(response.code, "application/json", body, request.keep_alive) &&
         request.keep_alive;
}

bool ApiHandler::ServeOpenApiV2(const HttpRequest& request, HttpConnection& connection) {
  auto respond = [&](const ApiResponse& response) {
    return connection.WriteResponse(response.code, "application/json", response.body.dump(),
                                    request.keep_alive) &&
           request.keep_alive;
  };
  if (auto denied = AuthorizePath(request)) return respond(*denied);
  if (request.method != "GET" && request.method != "HEAD") {
    return respond(
        StatusResponse(405, "MethodNotAllowed",
                       "the server does not allow this method on the requested resource"));
  }
  OpenApiV2Format format = NegotiateOpenApiV2(request.Header("accept"));
  if (format == OpenApiV2Format::kNotAcceptable) {
    // Neither form acceptable: the real server's answer too.
    return respond(StatusResponse(406, "NotAcceptable",
                                  "only the following media types are accepted: application/json, "
                                  "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"));
  }
  json document = OpenApiV2Document();
  if (format == OpenApiV2Format::kJson) {
    return connection.WriteResponse(200, "application/json", document.dump(), request.keep_alive) &&
           request.keep_alive;
  }
  // kubectl 1.20 asks for protobuf only. Refused (406), it falls back to /swagger-2.0.0.pb-v1,
  // which no server has served since 1.14, and `kubectl create` fails; hence protobuf too.
  auto encoded = OpenApiV2Protobuf(document);
  if (!encoded.ok()) {
    return respond(StatusResponse(500, "InternalError", std::string(encoded.status().message())));
  }
  return connection.WriteResponse(200, kOpenApiV2ProtobufType, *encoded, request.keep_alive) &&
         request.keep_alive;
}

ApiResponse ApiHandler::Route(const HttpRequest& request, bool* watch, ResourceRoute* route) {
  std::vector<std::string> segments;
  for (absl::string_view s : absl::StrSplit(request.path, '/', absl::SkipEmpty())) {
    segments.emplace_back(s);
  }
  bool read = request.method == "GET" || request.method == "HEAD";
  auto discovery = [&](std::optional<json> doc) -> ApiResponse {
    if (auto denied = AuthorizePath(request)) return *denied;
    if (!doc)
      return StatusResponse(404, "NotFound", "the server could not find the requested resource");
    if (!read)
      return StatusResponse(405, "MethodNotAllowed",
                            "the server does not allow this method on the requested resource");
    return {200, *doc};
  };
  if (segments.empty()) {
    return discovery(
        json{{"paths",
              {"/api", "/api/v1", "/apis", "/healthz", "/openapi/v2", "/openapi/v3", "/version"}}});
  }
  if (segments.size() == 1 &&
      (segments[0] == "healthz" || segments[0] == "livez" || segments[0] == "readyz")) {
    return {200, "ok"};
  }
  if (segments.size() == 1 && segments[0] == "version") return discovery(VersionDocument());
  if (segments[0] == "openapi" && segments.size() >= 2 && segments[1] == "v3") {
    if (segments.size() == 2) return discovery(OpenApiV3Root());
    std::vector<std::string> gv(segments.begin() + 2, segments.end());
    return discovery(OpenApiV3Document(absl::StrJoin(gv, "/")));
  }
  std::string group, version;
  size_t rest;
  if (segments[0] == "api") {
    if (segments.size() == 1) return discovery(ApiVersionsDocument(server_address_));
    group = "";
    version = segments[1];
    rest = 2;
  } else if (segments[0] == "apis") {
    if (segments.size() == 1) return discovery(ApiGroupListDocument());
    if (segments.size() == 2) return discovery(ApiGroupDocument(segments[1]));
    group = segments[1];
    version = segments[2];
    rest = 3;
  } else {
    return discovery(std::nullopt);
  }
  if (segments.size() == rest) return discovery(ApiResourceListDocument(group, version));

  std::vector<std::string> parts(segments.begin() + static_cast<ptrdiff_t>(rest), segments.end());
  // The watch prefix (/api/v1/watch/..., /apis/G/V/watch/...): deprecated in favour of
  // ?watch=true, still served; kuberesolver watches one Endpoints object through it.
  bool legacy_watch = false;
  if (parts[0] == "watch") {
    legacy_watch = true;
    parts.erase(parts.begin());
    if (parts.empty()) return discovery(std::nullopt);
  }
  std::string resource;
  if (parts[0] == "namespaces" && parts.size() >= 3) {
    route->ns = parts[1];
    resource = parts[2];
    parts.erase(parts.begin(), parts.begin() + 3);
  } else {
    resource = parts[0];
    parts.erase(parts.begin());
  }
  route->type = FindResourceType(group, resource);
  if (route->type == nullptr || route->type->version != version || parts.size() > 2 ||
      (!route->ns.empty() && !route->type->namespaced)) {
    return discovery(std::nullopt);
  }
  if (!parts.empty()) route->name = parts[0];
  if (parts.size() == 2) route->subresource = parts[1];
  if (!route->name.empty() && route->type->namespaced && route->ns.empty())
    return discovery(std::nullopt);
  if (!route->subresource.empty() &&
      (legacy_watch ||
       std::find(route->type->subresources.begin(), route->type->subresources.end(),
                 route->subresource) == route->type->subresources.end())) {
    return discovery(std::nullopt);
  }
  if (legacy_watch && request.method != "GET") {
    return StatusResponse(405, "MethodNotAllowed",
                          "the server does not allow this method on the requested resource");
  }

  *watch = request.method == "GET" &&
           (legacy_watch || (route->name.empty() && request.QueryBool("watch")));
  std::string verb;
  if (request.method == "GET") {
    verb = *watch ? "watch" : route->name.empty() ? "list" : "get";
  } else if (request.method == "POST") {
    verb = "create";
  } else if (request.method == "PUT") {
    verb = "update";
  } else if (request.method == "PATCH") {
    verb = "patch";
  } else if (request.method == "DELETE") {
    verb = route->name.empty() ? "deletecollection" : "delete";
  } else {
    *watch = false;
    return StatusResponse(405, "MethodNotAllowed",
                          "the server does not allow this method on the requested resource");
  }
  RequestAttributes attributes;
  attributes.verb = verb;
  attributes.api_group = group;
  attributes.api_version = version;
  attributes.resource = resource;
  attributes.subresource = route->subresource;
  attributes.ns = route->ns;
  attributes.name = route->name;
  if (attributes.name.empty() && (verb == "list" || verb == "watch")) {
    // As the real RequestInfo does: a list or watch of one object by its name is authorized
    // like a get of that name (resourceNames rules apply).
    FieldSelector selector;
    std::string ignored;
    if (FieldSelector::Parse(request.Query("fieldSelector"), &selector, &ignored)) {
      attributes.name = selector.RequiredName();
    }
  }
  UserInfo user;
  if (auto denied = Authorize(request, attributes, &user)) {
    *watch = false;
    return *denied;
  }
  if (*watch) return {};
  return ServeResource(request, *route, user);
}

ApiResponse ApiHandler::ServeResource(const HttpRequest& request, const ResourceRoute& route,
                                      const UserInfo& user) {
  const std::string& method = request.method;
  if (route.subresource == "scale") return Scale(request, route);
  if (route.subresource == "log") return PodLog(request, route);
  if (route.subresource == "token") return TokenRequest(request, route);
  if (!route.type->verbs.empty()) {
    // The reviews: create only, answered, never stored.
    if (method == "POST" && route.name.empty()) return SelfSubjectAccessReview(request, user);
    return StatusResponse(405, "MethodNotAllowed",
                          "the server does not allow this method on the requested resource");
  }
  if (route.name.empty()) {
    if (method == "GET") return List(request, route);
    if (method == "POST") return Create(request, route);
    if (method == "DELETE") return DeleteCollection(request, route);
    return StatusResponse(405, "MethodNotAllowed",
                          "the server does not allow this method on the requested resource");
  }
  if (method == "GET") {
    auto object = store_.Get(route.type->resource, route.ns, route.name);
    if (!object.ok()) return FromStatus(object.status(), route, route.name);
    if (WantsTable(request)) return {200, ToTable(*route.type, {*object}, true, "")};
    return {200, *object};
  }
  if (method == "PUT") return Replace(request, route);
  if (method == "PATCH") return Patch(request, route);
  if (method == "DELETE") return Delete(request, route);
  return StatusResponse(405, "MethodNotAllowed",
                        "the server does not allow this method on the requested resource");
}

ApiResponse ApiHandler::Create(const HttpRequest& request, const ResourceRoute& route) {
  auto body = ParseBody(request);
  if (!body.ok()) return StatusResponse(400, "BadRequest", std::string(body.status().message()));
  if (body->contains("kind") && (*body)["kind"] != route.type->kind) {
    return StatusResponse(
        400, "BadRequest",
        fmt::format("the kind of the object ({}) does not match the resource {} "
                    "({})",
                    (*body)["kind"].dump(), route.type->resource, route.type->kind));
  }
  std::string name = MetaName(*body);
  if (auto refused = CheckWrite(route, *body, name)) return *refused;
  if (auto refused = CheckNamespaceAdmits(route, name)) return *refused;
  auto created = store_.Create(route.type->resource, route.ns, std::move(*body));
  if (!created.ok()) return FromStatus(created.status(), route, name);
  return {201, *created};
}

std::optional<ApiResponse> CheckWrite(const ResourceRoute& route, const json& object,
                                      const std::string& name) {
  if (auto error = DecodeError(*route.type, object)) {
    return StatusResponse(400, "BadRequest", *error);
  }
  auto causes = ValidateForApi(*route.type, object);
  if (causes.empty()) return std::nullopt;
  return FromStatus(InvalidObjectError(*route.type, name, causes), route, name);
}

std::optional<ApiResponse> ApiHandler::CheckNamespaceAdmits(const ResourceRoute& route,
                                                            const std::string& name) const {
  if (!route.type->namespaced || route.ns.empty()) return std::nullopt;
  // The NamespaceLifecycle admission plugin: no content in a namespace that does not exist or
  // is being deleted.
  auto ns = store_.Get("namespaces", "", route.ns);
  if (!ns.ok()) {
    return StatusResponse(404, "NotFound", fmt::format("namespaces \"{}\" not found", route.ns),
                          json{{"name", route.ns}, {"kind", "namespaces"}});
  }
  if ((*ns)["metadata"].contains("deletionTimestamp")) {
    std::string message = fmt::format(
        "unable to create new content in namespace {} because it is being terminated", route.ns);
    json details = Details(route, name);
    details["causes"] = {{{"reason", "NamespaceTerminating"},
                          {"message", message},
                          {"field", "metadata.namespace"}}};
    std::string object = name.empty() ? GroupResource(*route.type)
                                      : fmt::format("{} \"{}\"", GroupResource(*route.type), name);
    return StatusResponse(403, "Forbidden", fmt::format("{} is forbidden: {}", object, message),
                          details);
  }
  return std::nullopt;
}

ApiResponse ApiHandler::Delete(const HttpRequest& request, const ResourceRoute& route) {
  (void)request;
  if (route.type->resource == "namespaces") {
    // As on a real cluster: the namespace turns Terminating at once and the namespace controller
    // deletes its content, then the namespace (so a `kubectl delete -f` that names the namespace
    // first still finds the objects in it).
    auto marked = MutateNamespaceForDeletion(store_, route.name);
    if (!marked.ok()) return FromStatus(marked.status(), route, route.name);
    return {200, *marked};
  }
  auto deleted = store_.Delete(route.type->resource, route.ns, route.name);
  if (!deleted.ok()) return FromStatus(deleted.status(), route, route.name);
  return {200, *deleted};
}

ApiResponse ApiHandler::Replace(const HttpRequest& request, const ResourceRoute& route) {
  auto body = ParseBody(request);
  if (!body.ok()) return StatusResponse(400, "BadRequest", std::string(body.status().message()));
  std::string name = MetaName(*body);
  if (name.empty()) {
    (*body)["metadata"]["name"] = route.name;
  } else if (name != route.name) {
    return StatusResponse(400, "BadRequest",
                          fmt::format("the name of the object ({}) does not match the name on the "
                                      "URL ({})",
                                      name, route.name));
  }
  if (auto refused = CheckWrite(route, *body, route.name)) return *refused;
  auto updated = store_.Update(route.type->resource, route.ns, std::move(*body));
  if (!updated.ok()) return FromStatus(updated.status(), route, route.name);
  return {200, *updated};
}

ApiResponse ApiHandler::DeleteCollection(const HttpRequest& request, const ResourceRoute& route) {
  auto selector = LabelSelector::Parse(request.Query("labelSelector"));
  if (!selector.ok())
    return StatusResponse(400, "BadRequest", std::string(selector.status().message()));
  auto list = store_.List(route.type->resource, route.ns, *selector);
  json items = json::array();
  for (const auto& item : list.items) {
    std::string ns = item["metadata"].value("namespace", "");
    auto deleted = store_.Delete(route.type->resource, ns, MetaName(item));
    if (deleted.ok()) items.push_back(*deleted);
  }
  return {200, json{{"kind", route.type->kind + "List"},
                    {"apiVersion", route.type->ApiVersion()},
                    {"metadata", {{"resourceVersion", std::to_string(store_.CurrentVersion())}}},
                    {"items", items}}};
}

}  // namespace podlb::sandbox
