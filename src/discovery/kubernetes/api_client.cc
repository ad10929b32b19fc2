#include "discovery/kubernetes/api_client.h"

#include <curl/curl.h>

#include <cctype>
#include <mutex>

#include "core/status_macros.h"
#include "discovery/kubernetes/endpoint_slice_decoder.h"
#include "nlohmann/json.hpp"

namespace podlb {
namespace {

// curl_global_init is not safe to race with other curl calls; run it once, first.
void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool AllWhitespace(std::string_view s) {
  return s.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

// Poll interval of the transfer loop: also the longest a cancelled transfer keeps running.
constexpr int kPollMillis = 50;

}  // namespace

absl::Status KubernetesHttpError(const HttpResponse& response, std::string_view verb,
                                 std::string_view resource, std::string_view scope,
                                 std::string_view rbac, std::string_view grant_where) {
  const std::string detail = StatusMessage(response.body);
  const std::string asked = std::string(verb) + " " + std::string(resource);
  switch (response.status) {
    case 401:
      return absl::UnauthenticatedError(
          "kubernetes: 401 Unauthorized " + asked +
          ": the token was rejected; check the service-account token / kubeconfig user");
    case 403:
      return absl::PermissionDeniedError(
          "kubernetes: 403 Forbidden " + asked + " " + std::string(scope) +
          ": the service account needs get/list/watch on " + std::string(rbac) + " " +
          std::string(grant_where) + (detail.empty() ? "" : " (server: " + detail + ")"));
    case 410:
      return absl::OutOfRangeError("410 Gone: " + detail);
    default:
      return absl::UnavailableError("kubernetes: HTTP " + std::to_string(response.status) + " " +
                                    asked + " " + std::string(scope) +
                                    (detail.empty() ? "" : ": " + detail));
  }
}

std::string QueryEscape(std::string_view in) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : in) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

struct ApiClient::Transfer {
  CURL* easy = nullptr;
  bool watch = false;
  const LineCallback* on_line = nullptr;
  const std::function<void()>* on_open = nullptr;
  bool opened = false;
  size_t max_body = 0;
  size_t max_line = 0;
  long status = 0;
  std::string body;
  std::string pending;  // the start of a line whose newline has not arrived yet
  absl::Status abort_status;

  // Returning less than `len` makes curl abort with CURLE_WRITE_ERROR.
  size_t OnData(const char* data, size_t len) {
    if (status == 0) curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    if (!watch || status != 200) {
      if (body.size() + len > max_body) {
        abort_status = absl::ResourceExhaustedError(
            "response body exceeds " + std::to_string(max_body) + " bytes");
        return 0;
      }
      body.append(data, len);
      return len;
    }
    std::string_view chunk(data, len);
    while (!chunk.empty()) {
      const size_t nl = chunk.find('\n');
      if (nl == std::string_view::npos) {
        if (pending.size() + chunk.size() > max_line) return LineTooLong();
        pending.append(chunk);
        break;
      }
      std::string_view line = chunk.substr(0, nl);
      if (!pending.empty()) {
        pending.append(line);
        line = pending;
      }
      if (line.size() > max_line) return LineTooLong();
      if (!AllWhitespace(line)) {
        absl::Status s = (*on_line)(line);
        if (!s.ok()) {
          abort_status = std::move(s);
          return 0;
        }
      }
      pending.clear();
      chunk.remove_prefix(nl + 1);
    }
    return len;
  }

  size_t LineTooLong() {
    abort_status = absl::ResourceExhaustedError("watch event exceeds " +
                                                 std::to_string(max_line) + " bytes");
    return 0;
  }

  // The blank line ends the headers: the status is final (no 1xx for a GET).
  static size_t Header(char* data, size_t size, size_t n, void* user) {
    auto* t = static_cast<Transfer*>(user);
    const size_t len = size * n;
    std::string_view line(data, len);
    if (line == "\r\n" || line == "\n") {
      long status = 0;
      curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
      if (status == 200 && !t->opened && t->on_open != nullptr && *t->on_open) {
        t->opened = true;
        (*t->on_open)();
      }
    }
    return len;
  }

  static size_t Write(char* data, size_t size, size_t n, void* user) {
    return static_cast<Transfer*>(user)->OnData(data, size * n);
  }
};

absl::StatusOr<std::unique_ptr<ApiClient>> ApiClient::Create(const KubeConfig& config,
                                                             ApiClientOptions options) {
  InitCurlOnce();
  if (config.server.empty())
    return absl::InvalidArgumentError("kubernetes: no API server URL configured");
  std::unique_ptr<ApiClient> client(new ApiClient(config, options));
  if (client->ca_pem_.empty() && !config.ca_file.empty()) {
    ASSIGN_OR_RETURN(client->ca_pem_, ReadWholeFile(config.ca_file));
  }
  if (client->client_cert_pem_.empty() && !config.client_cert_file.empty()) {
    ASSIGN_OR_RETURN(client->client_cert_pem_, ReadWholeFile(config.client_cert_file));
  }
  if (client->client_key_pem_.empty() && !config.client_key_file.empty()) {
    ASSIGN_OR_RETURN(client->client_key_pem_, ReadWholeFile(config.client_key_file));
  }
  return client;
}

ApiClient::ApiClient(const KubeConfig& config, ApiClientOptions options)
    : options_(options),
      server_(config.server),
      ca_pem_(config.ca_pem),
      client_cert_pem_(config.client_cert_pem),
      client_key_pem_(config.client_key_pem),
      insecure_(config.insecure_skip_tls_verify),
      token_(std::make_unique<BearerToken>(config.token, config.token_file)) {
  while (!server_.empty() && server_.back() == '/') server_.pop_back();
}

ApiClient::~ApiClient() = default;

absl::StatusOr<HttpResponse> ApiClient::Get(const std::string& path,
                                            const std::atomic<bool>* cancel) {
  return Run(path, Outgoing{}, /*watch=*/false, nullptr, nullptr, cancel,
             options_.request_timeout);
}

absl::StatusOr<HttpResponse> ApiClient::Send(const std::string& method, const std::string& path,
                                             const std::string& content_type,
                                             const std::string& body,
                                             const std::atomic<bool>* cancel) {
  return Run(path, Outgoing{.method = method.c_str(), .content_type = &content_type, .body = &body},
             /*watch=*/false, nullptr, nullptr, cancel, options_.request_timeout);
}

absl::StatusOr<HttpResponse> ApiClient::Watch(const std::string& path,
                                              const std::function<void()>& on_open,
                                              const LineCallback& on_line,
                                              const std::atomic<bool>* cancel,
                                              std::chrono::milliseconds max_duration) {
  return Run(path, Outgoing{}, /*watch=*/true, &on_open, &on_line, cancel, max_duration);
}

absl::StatusOr<HttpResponse> ApiClient::Run(const std::string& path, const Outgoing& outgoing,
                                            bool watch,
                                            const std::function<void()>* on_open,
                                            const LineCallback* on_line,
                                            const std::atomic<bool>* cancel,
                                            std::chrono::milliseconds max_duration) {
  Transfer t;
  t.on_open = on_open;
  t.watch = watch;
  t.on_line = on_line;
  t.max_body = options_.max_body_bytes;
  t.max_line = options_.max_line_bytes;
  t.easy = curl_easy_init();
  CURLM* multi = curl_multi_init();
  if (t.easy == nullptr || multi == nullptr) {
    if (t.easy) curl_easy_cleanup(t.easy);
    if (multi) curl_multi_cleanup(multi);
    return absl::ResourceExhaustedError("kubernetes: cannot create a curl handle");
  }
  const std::string url = server_ + path;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  const std::string token = token_->Current();
  if (!token.empty())
    headers = curl_slist_append(headers, ("Authorization: Bearer " + token).c_str());
  if (outgoing.content_type != nullptr && !outgoing.content_type->empty())
    headers = curl_slist_append(headers, ("Content-Type: " + *outgoing.content_type).c_str());

  CURL* e = t.easy;
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  if (std::string_view(outgoing.method) != "GET") {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, outgoing.method);
  }
  if (outgoing.body != nullptr &&
      (!outgoing.body->empty() || (outgoing.content_type && !outgoing.content_type->empty()))) {
    // Not copied: the body outlives the transfer (it is the caller's, for this call).
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, outgoing.body->c_str());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, static_cast<long>(outgoing.body->size()));
  }
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");  // gzip if the server offers it
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(max_duration.count()));
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &Transfer::Header);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &Transfer::Write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  // The blobs are copied by curl; the strings outlive the transfer anyway.
  if (!ca_pem_.empty()) {
    curl_blob blob{ca_pem_.data(), ca_pem_.size(), CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &blob);
  }
  if (!client_cert_pem_.empty()) {
    curl_blob cert{client_cert_pem_.data(), client_cert_pem_.size(), CURL_BLOB_COPY};
    curl_blob key{client_key_pem_.data(), client_key_pem_.size(), CURL_BLOB_COPY};
    curl_easy_setopt(e, CURLOPT_SSLCERTTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSLCERT_BLOB, &cert);
    curl_easy_setopt(e, CURLOPT_SSLKEYTYPE, "PEM");
    curl_easy_setopt(e, CURLOPT_SSLKEY_BLOB, &key);
  }
  if (insecure_) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }

  // The multi interface lets the loop look at `cancel` every kPollMillis, so Stop() never
  // waits for a quiet watch to produce its next byte.
  curl_multi_add_handle(multi, e);
  CURLcode result = CURLE_OK;
  bool cancelled = false;
  int running = 1;
  while (running > 0) {
    if (cancel != nullptr && cancel->load(std::memory_order_acquire)) {
      cancelled = true;
      break;
    }
    if (curl_multi_perform(multi, &running) != CURLM_OK) break;
    if (running > 0) curl_multi_poll(multi, nullptr, 0, kPollMillis, nullptr);
  }
  int queued = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi, &queued)) {
    if (msg->msg == CURLMSG_DONE) result = msg->data.result;
  }
  if (t.status == 0) curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &t.status);
  curl_multi_remove_handle(multi, e);
  curl_easy_cleanup(e);
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);

  if (cancelled) return absl::CancelledError("kubernetes: request cancelled");
  if (!t.abort_status.ok()) return t.abort_status;
  if (watch && t.status == 200 && !AllWhitespace(t.pending))
    return absl::DataLossError("watch stream ended in the middle of an event (" +
                               std::to_string(t.pending.size()) + " bytes of an incomplete line)");
  if (result != CURLE_OK) {
    // A watch that ran out its own time or whose server closed between events simply ended.
    if (watch && t.status == 200 && result == CURLE_OPERATION_TIMEDOUT)
      return HttpResponse{200, ""};
    if (watch && t.status == 200 && (result == CURLE_PARTIAL_FILE || result == CURLE_RECV_ERROR))
      return absl::UnavailableError("watch stream of " + server_ + " broke: " +
                                    (errbuf[0] ? errbuf : curl_easy_strerror(result)));
    return absl::UnavailableError("cannot reach the API server " + server_ + ": " +
                                  (errbuf[0] ? std::string(errbuf) : curl_easy_strerror(result)));
  }
  return HttpResponse{t.status, std::move(t.body)};
}

absl::StatusOr<nlohmann::json> SendJson(ApiClient& client, const std::string& method,
                                        const std::string& path, const std::string& content_type,
                                        const std::string& body) {
  auto answer = client.Send(method, path, content_type, body);
  if (!answer.ok()) return answer.status();
  nlohmann::json parsed = nlohmann::json::parse(answer->body, nullptr, /*allow_exceptions=*/false);
  const long code = answer->status;
  if (code >= 200 && code < 300) {
    if (parsed.is_discarded()) {
      return absl::InternalError(method + " " + path + ": the answer is not JSON");
    }
    return parsed;
  }
  std::string message = parsed.is_object() && parsed.contains("message") &&
                                parsed["message"].is_string()
                            ? parsed["message"].get<std::string>()
                            : answer->body;
  std::string text = method + " " + path + ": HTTP " + std::to_string(code) + ": " + message;
  switch (code) {
    case 401:
    case 403:
      return absl::PermissionDeniedError(text);
    case 404:
      return absl::NotFoundError(text);
    case 409:
      return absl::AbortedError(text);
    case 400:
    case 422:
      return absl::InvalidArgumentError(text);
    default:
      return absl::UnknownError(text);
  }
}

}  // namespace podlb
