// ApiClient: HTTP GET and streaming watch requests to the Kubernetes API server over libcurl,
// with TLS verification against the configured CA and the (possibly rotated) bearer token.
// One ApiClient may serve several threads at once: each call uses its own curl handles.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "discovery/kubernetes/kube_config.h"
#include "nlohmann/json_fwd.hpp"

namespace podlb {

struct ApiClientOptions {
  // A response body (one list page) larger than this is refused (a runaway response must not
  // eat the memory).
  size_t max_body_bytes = 64u << 20;
  // One watch event (one line) larger than this ends the watch.
  size_t max_line_bytes = 16u << 20;
  std::chrono::milliseconds connect_timeout{std::chrono::seconds(10)};
  // A Get that takes longer than this fails (watches have no total timeout; the server ends
  // them after timeoutSeconds).
  std::chrono::milliseconds request_timeout{std::chrono::seconds(60)};
};

struct HttpResponse {
  long status = 0;   // HTTP status code
  std::string body;  // for a watch: the body of a non-200 answer only
};

// Percent-encodes a query parameter value (RFC 3986 unreserved characters pass through), for
// the labelSelector / fieldSelector / continue values of request paths.
std::string QueryEscape(std::string_view in);

// An API server's answer other than 200 as a Status whose message says what to do, in the words
// every podlb 403 uses: 401 Unauthenticated (the token was rejected), 403 PermissionDenied naming
// the verbs to grant on `rbac` `grant_where`, 410 OutOfRange (relist), anything else Unavailable.
// `verb` is "listing" or "watching"; `resource` what was asked for ("endpointslices", `pods "x"`),
// `scope` where (`in "default"`, `in all namespaces`); `grant_where` e.g. `in namespace default`.
absl::Status KubernetesHttpError(const HttpResponse& response, std::string_view verb,
                                 std::string_view resource, std::string_view scope,
                                 std::string_view rbac, std::string_view grant_where);

class ApiClient {
 public:
  // Fails if the CA / client certificate files cannot be read.
  static absl::StatusOr<std::unique_ptr<ApiClient>> Create(const KubeConfig& config,
                                                           ApiClientOptions options = {});
  ~ApiClient();

  const std::string& server() const { return server_; }
  BearerToken& token() { return *token_; }

  // GET `path` (e.g. "/api/v1/namespaces/default/services"). Transport failures are
  // Unavailable, a body over the cap ResourceExhausted, a set `cancel` Cancelled.
  absl::StatusOr<HttpResponse> Get(const std::string& path, const std::atomic<bool>* cancel);

  // Streams a watch: `on_open` runs once the server answered 200, then every complete line goes
  // to `on_line`; a non-OK return from it ends the watch with that status. A clean end of stream
  // (or `max_duration` passing, a guard against a server that vanished silently) returns
  // {200, ""}; a non-200 answer returns its status and body without calling `on_line`. A stream
  // cut in the middle of a line is DataLoss (never parsed), a line over the cap
  // ResourceExhausted.
  using LineCallback = std::function<absl::Status(std::string_view line)>;
  absl::StatusOr<HttpResponse> Watch(const std::string& path, const std::function<void()>& on_open,
                                     const LineCallback& on_line, const std::atomic<bool>* cancel,
                                     std::chrono::milliseconds max_duration);

  // One request of any verb (POST, PUT, PATCH, DELETE…) with `body` sent as `content_type`
  // (nothing sent when both are empty); the same transport, credentials and errors as Get.
  absl::StatusOr<HttpResponse> Send(const std::string& method, const std::string& path,
                                    const std::string& content_type, const std::string& body,
                                    const std::atomic<bool>* cancel = nullptr);

 private:
  struct Transfer;
  ApiClient(const KubeConfig& config, ApiClientOptions options);
  struct Outgoing {
    const char* method = "GET";
    const std::string* content_type = nullptr;
    const std::string* body = nullptr;
  };
  absl::StatusOr<HttpResponse> Run(const std::string& path, const Outgoing& outgoing, bool watch,
                                   const std::function<void()>* on_open,
                                   const LineCallback* on_line, const std::atomic<bool>* cancel,
                                   std::chrono::milliseconds max_duration);

  const ApiClientOptions options_;
  std::string server_;
  std::string ca_pem_;
  std::string client_cert_pem_;
  std::string client_key_pem_;
  bool insecure_ = false;
  std::unique_ptr<BearerToken> token_;
};

// One request whose answer is JSON, as kubectl makes them: the parsed body of a 2xx answer, or
// the Status the server answered as an absl::Status carrying its message ("METHOD PATH: HTTP
// code: message"): 401/403 PermissionDenied, 404 NotFound, 409 Aborted (conflict or exists),
// 400/422 InvalidArgument, others Unknown; transport failures Unavailable.
absl::StatusOr<nlohmann::json> SendJson(ApiClient& client, const std::string& method,
                                        const std::string& path,
                                        const std::string& content_type = "",
                                        const std::string& body = "");

}  // namespace podlb
