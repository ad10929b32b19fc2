// ApiServer: the Kubernetes API-server stand-in. Speaks the real REST protocol over HTTP/1.1
// (TLS with a CA it generates, or plaintext) for the types in ServedResourceTypes(): discovery
// documents, get/list/watch (resourceVersion, allowWatchBookmarks, timeoutSeconds, 410 Gone,
// chunked lists with limit/continue, the legacy /watch/ paths), OpenAPI v2 and v3,
// create/replace/patch/delete, Status objects for errors, bearer-token auth. Runs its own
// threads; Start/Stop from one control thread, everything else is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

struct ApiServerOptions {
  std::string listen_address = "127.0.0.1";
  uint16_t port = 0;  // 0: pick a free port
  bool tls = true;
  // Bearer tokens of the admin (group system:masters: allowed everything). With neither these
  // nor forbidden_tokens, the server is open: a request without a known token acts as the admin.
  // Either way, ServiceAccount tokens from the TokenRequest API authenticate as their account
  // and are authorized by RBAC (the Roles and bindings in the store).
  std::set<std::string> tokens;
  // Tokens of the user system:serviceaccount:default:podlb-forbidden, whom no binding names
  // (403 on everything but discovery), to test RBAC failure paths.
  std::set<std::string> forbidden_tokens;
  // The namespaces a real cluster starts with (default, kube-system, kube-public,
  // kube-node-lease), created by Start when missing: creates into a missing namespace fail.
  bool create_system_namespaces = true;
  // The output of a pod's container for pods/log (`kubectl logs`); `previous`: of its run before
  // the last restart (`--previous`). Unset: empty logs. The server applies tailLines and
  // limitBytes to what it returns.
  std::function<absl::StatusOr<std::string>(const std::string& ns, const std::string& pod,
                                            const std::string& container, bool previous)>
      pod_logs;
  // Bookmark interval for watches that asked for bookmarks (the real server: about a minute).
  std::chrono::milliseconds bookmark_interval{std::chrono::seconds(60)};
  // Longest watch the server holds open when the client gives no timeoutSeconds.
  std::chrono::seconds default_watch_timeout{std::chrono::minutes(30)};
  // Test hook, run on the connection thread before each list request is served, with the
  // resource plural and the request's continue token ("" for a first page): lets a test change
  // or compact the store between the pages of a chunked list, deterministically.
  std::function<void(const std::string& resource, const std::string& continue_token)> before_list;
};

class ApiServer {
 public:
  ApiServer(ApiServerOptions options, std::shared_ptr<ResourceStore> store);
  ~ApiServer();  // stops

  absl::Status Start();
  void Stop();

  uint16_t port() const;
  // "https://127.0.0.1:PORT" or "http://…".
  std::string url() const;
  // PEM of the CA that signed the serving certificate (empty without TLS).
  std::string ca_pem() const;
  ResourceStore& store();

  // A token for ServiceAccount NS/NAME as the TokenRequest API issues it (NotFound when the
  // account does not exist), for a kubeconfig or a pod's token file.
  absl::StatusOr<std::string> IssueServiceAccountToken(const std::string& ns,
                                                       const std::string& name,
                                                       std::chrono::seconds lifetime);

  // Counters for tests and benchmarks, per resource plural: watch requests opened so far, and
  // list responses served (each page of a chunked list counts; refused requests do not).
  uint64_t WatchesOpened(const std::string& resource) const;
  uint64_t ListsServed(const std::string& resource) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A kubeconfig (YAML) for `url` with the CA embedded (certificate-authority-data) and a bearer
// token, context and cluster named "podlb-sandbox", default namespace "default".
std::string MakeKubeconfig(const std::string& url, const std::string& ca_pem,
                           const std::string& token);

}  // namespace podlb::sandbox
