// ApiHandler: the REST semantics of the API-server stand-in. Routes one parsed HTTP request to
// discovery documents, get/list/watch, create/replace/patch/delete or the scale subresource,
// checks the bearer token, and answers with Kubernetes objects or Status objects. Shared by all
// connection threads; every member is thread-safe.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "sandbox/apiserver/api_server.h"
#include "sandbox/apiserver/authentication.h"
#include "sandbox/apiserver/http_connection.h"
#include "sandbox/apiserver/rbac_authorizer.h"
#include "sandbox/apiserver/resource_store.h"
#include "sandbox/apiserver/watch_supervisor.h"

namespace podlb::sandbox {

// Requests served per resource plural, for tests and benchmarks.
class ApiCounters {
 public:
  void CountWatch(const std::string& resource);
  void CountList(const std::string& resource);
  uint64_t Watches(const std::string& resource) const;
  uint64_t Lists(const std::string& resource) const;

 private:
  mutable absl::Mutex mu_;
  std::map<std::string, uint64_t> watches_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, uint64_t> lists_ ABSL_GUARDED_BY(mu_);
};

// Where a resource request points: a collection (name empty) or one object.
struct ResourceRoute {
  const ResourceType* type = nullptr;
  std::string ns;           // empty: cluster-scoped type, or all namespaces
  std::string name;         // empty: the collection
  std::string subresource;  // one of the type's subresources ("scale", "log", ...) or empty
};

struct ApiResponse {
  int code = 200;
  nlohmann::json body;
  // Set for a body that is not JSON (pods/log: text/plain); `body` then holds the text.
  std::string content_type = "";
};

// A metav1.Status failure as the real server writes it.
ApiResponse StatusResponse(int code, const std::string& reason, const std::string& message,
                           const nlohmann::json& details = nullptr);

// The details of a 422 Invalid, plus the field causes `status` carries (object_validation.h). With
// causes, details.kind is the kind ("Pod"), as the real server sends and kubectl prints it ("The
// Pod \"x\" is invalid: ...").
nlohmann::json WithCauses(nlohmann::json details, const absl::Status& status,
                          const ResourceRoute& route);
// "endpointslices.discovery.k8s.io", "services": how the real server names a resource in errors.
std::string GroupResource(const ResourceType& type);
// metav1.StatusDetails for an object of `route`: kind (the plural), group, name.
nlohmann::json Details(const ResourceRoute& route, const std::string& name);
// 400 BadRequest for what does not decode into the kind (a field of the wrong type), 422
// Invalid with causes for what validation refuses; nullopt when `object` may be written.
std::optional<ApiResponse> CheckWrite(const ResourceRoute& route, const nlohmann::json& object,
                                      const std::string& name);
// Marks a namespace Terminating (deletionTimestamp, status.phase, the "kubernetes" finalizer);
// the namespace controller deletes its content and then the namespace.
absl::StatusOr<nlohmann::json> MutateNamespaceForDeletion(ResourceStore& store,
                                                          const std::string& name);

// A store error as the real server reports it: NotFound → 404, AlreadyExists → 409, Aborted →
// 409 Conflict, InvalidArgument → 422 Invalid or 400, OutOfRange → 410 Expired.
ApiResponse FromStatus(const absl::Status& status, const ResourceRoute& route,
                       const std::string& name);

// The client asked for a server-side Table (kubectl printing for humans).
bool WantsTable(const HttpRequest& request);

// "metadata.name=x,metadata.namespace!=y": the only field selectors the stand-in knows.
class FieldSelector {
 public:
  static bool Parse(const std::string& text, FieldSelector* out, std::string* error);
  // metadata.name=name, the selector a watch of one object (/watch/.../NAME) implies.
  static FieldSelector NameEquals(const std::string& name);
  bool Matches(const nlohmann::json& object) const;
  bool Empty() const { return terms_.empty(); }
  // The name an exact metadata.name term requires, or "" if none does.
  std::string RequiredName() const;

 private:
  struct Term {
    std::string field;
    bool equals;
    std::string value;
  };
  std::vector<Term> terms_;
};

class ApiHandler {
 public:
  ApiHandler(const ApiServerOptions& options, ResourceStore& store, ApiCounters& counters,
             WatchSupervisor& supervisor, TokenAuthenticator& authenticator,
             const RbacAuthorizer& authorizer, std::string server_address);

  // Serves one request and writes the response. Returns false when the connection must close.
  bool Serve(const HttpRequest& request, HttpConnection& connection);

 private:
  ApiResponse Route(const HttpRequest& request, bool* watch, ResourceRoute* route);
  // /openapi/v2 in JSON or protobuf, by the Accept header; false when the connection must close.
  bool ServeOpenApiV2(const HttpRequest& request, HttpConnection& connection);
  ApiResponse ServeResource(const HttpRequest& request, const ResourceRoute& route,
                            const UserInfo& user);
  ApiResponse List(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse Create(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse Replace(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse Patch(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse DeleteCollection(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse Scale(const HttpRequest& request, const ResourceRoute& route);
  // Server-side apply (application/apply-patch+yaml): creates the object when it is missing.
  ApiResponse Apply(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse Delete(const HttpRequest& request, const ResourceRoute& route);
  // pods/log, serviceaccounts/token (TokenRequest), selfsubjectaccessreviews: subresources.cc.
  ApiResponse PodLog(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse TokenRequest(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse SelfSubjectAccessReview(const HttpRequest& request, const UserInfo& user);
  // 404 when the namespace of a create does not exist, 403 while it is terminating.
  std::optional<ApiResponse> CheckNamespaceAdmits(const ResourceRoute& route,
                                                  const std::string& name) const;
  // Streams a watch; returns false when the connection must close.
  bool Watch(const HttpRequest& request, const ResourceRoute& route, HttpConnection& connection);
  // 401 without valid credentials, 403 when RBAC denies `attributes`; nullopt when allowed, with
  // the requester in `user`.
  std::optional<ApiResponse> Authorize(const HttpRequest& request,
                                       const RequestAttributes& attributes, UserInfo* user) const;
  // Discovery, /version and /openapi: non-resource GETs every authenticated user may make.
  std::optional<ApiResponse> AuthorizePath(const HttpRequest& request) const;

  const ApiServerOptions& options_;
  ResourceStore& store_;
  ApiCounters& counters_;
  WatchSupervisor& supervisor_;
  TokenAuthenticator& authenticator_;
  const RbacAuthorizer& authorizer_;
  const std::string server_address_;
};

}  // namespace podlb::sandbox
