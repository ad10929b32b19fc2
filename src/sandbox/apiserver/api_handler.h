// ApiHandler: the REST semantics of the API-server stand-in. Routes one parsed HTTP request to
// discovery documents, get/list/watch, create/replace/patch/delete or the scale subresource,
// checks the bearer token, and answers with Kubernetes objects or Status objects. Shared by all
// connection threads; every member is thread-safe.
#pragma once

#include <map>
#include <string>

#include "absl/synchronization/mutex.h"
#include "nlohmann/json.hpp"
#include "sandbox/apiserver/api_server.h"
#include "sandbox/apiserver/http_connection.h"
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
  std::string subresource;  // "scale", "status" or empty
};

struct ApiResponse {
  int code = 200;
  nlohmann::json body;
};

// A metav1.Status failure as the real server writes it.
ApiResponse StatusResponse(int code, const std::string& reason, const std::string& message,
                           const nlohmann::json& details = nullptr);

// The details of a 422 Invalid, plus the field causes `status` carries (object_validation.h). With
// causes, details.kind is the kind ("Pod"), as the real server sends and kubectl prints it ("The
// Pod \"x\" is invalid: ...").
nlohmann::json WithCauses(nlohmann::json details, const absl::Status& status,
                          const ResourceRoute& route);
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
             WatchSupervisor& supervisor, std::string server_address);

  // Serves one request and writes the response. Returns false when the connection must close.
  bool Serve(const HttpRequest& request, HttpConnection& connection);

 private:
  ApiResponse Route(const HttpRequest& request, bool* watch, ResourceRoute* route);
  // /openapi/v2 in JSON or protobuf, by the Accept header; false when the connection must close.
  bool ServeOpenApiV2(const HttpRequest& request, HttpConnection& connection);
  ApiResponse ServeResource(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse List(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse Create(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse Replace(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse Patch(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse DeleteCollection(const HttpRequest& request, const ResourceRoute& route);
  ApiResponse Scale(const HttpRequest& request, const ResourceRoute& route);
  // Streams a watch; returns false when the connection must close.
  bool Watch(const HttpRequest& request, const ResourceRoute& route, HttpConnection& connection);
  // 401/403 for resource requests, nullopt when allowed.
  std::optional<ApiResponse> Authorize(const HttpRequest& request, const ResourceRoute* route,
                                       const std::string& verb) const;

  const ApiServerOptions& options_;
  ResourceStore& store_;
  ApiCounters& counters_;
  WatchSupervisor& supervisor_;
  const std::string server_address_;
};

}  // namespace podlb::sandbox
