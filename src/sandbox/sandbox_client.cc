#include "sandbox/sandbox_client.h"

#include <curl/curl.h>

#include "absl/strings/str_cat.h"
#include "sandbox/controllers/store_watch.h"

namespace podlb::sandbox {
namespace {

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

}  // namespace

absl::StatusOr<nlohmann::json> SandboxClient::Request(const std::string& method,
                                                      const std::string& path,
                                                      const std::string& content_type,
                                                      const std::string& body) {
  CURL* curl = curl_easy_init();
  if (curl == nullptr) return absl::InternalError("libcurl: cannot create a handle");
  std::string url = creds_.server + path;
  std::string response;
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  if (!content_type.empty()) {
    headers = curl_slist_append(headers, ("Content-Type: " + content_type).c_str());
  }
  if (!creds_.token.empty()) {
    headers = curl_slist_append(headers, ("Authorization: Bearer " + creds_.token).c_str());
  }
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  if (!body.empty() || method == "PATCH" || method == "POST" || method == "PUT") {
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.c_str());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, AppendBody);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &response);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 10000L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_blob ca{const_cast<char*>(creds_.ca_pem.data()), creds_.ca_pem.size(), CURL_BLOB_COPY};
  if (!creds_.ca_pem.empty()) curl_easy_setopt(curl, CURLOPT_CAINFO_BLOB, &ca);
  CURLcode rc = curl_easy_perform(curl);
  long code = 0;
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(
        "cannot reach the sandbox API server at ", creds_.server, ": ", curl_easy_strerror(rc),
        " (is the sandbox that wrote these credentials still running?)"));
  }
  nlohmann::json parsed = nlohmann::json::parse(response, nullptr, /*allow_exceptions=*/false);
  if (code >= 200 && code < 300) {
    if (parsed.is_discarded()) {
      return absl::InternalError(absl::StrCat(method, " ", path, ": the answer is not JSON"));
    }
    return parsed;
  }
  std::string message = parsed.is_object() ? parsed.value("message", response) : response;
  std::string text = absl::StrCat(method, " ", path, ": HTTP ", code, ": ", message);
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

absl::Status SandboxClient::Scale(const std::string& ns, const std::string& name, int replicas) {
  if (replicas < 0) {
    return absl::InvalidArgumentError(absl::StrCat("replicas must be >= 0, got ", replicas));
  }
  std::string path = absl::StrCat("/apis/apps/v1/namespaces/", ns, "/deployments/", name, "/scale");
  nlohmann::json patch = {{"spec", {{"replicas", replicas}}}};
  auto result = Request("PATCH", path, "application/merge-patch+json", patch.dump());
  if (result.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(
        absl::StrCat("deployment ", ns, "/", name, " not found (the sandbox has default/greeter)"));
  }
  return result.status();
}

absl::Status SandboxClient::RolloutRestart(const std::string& ns, const std::string& name) {
  std::string path = absl::StrCat("/apis/apps/v1/namespaces/", ns, "/deployments/", name);
  nlohmann::json patch = {
      {"spec",
       {{"template",
         {{"metadata",
           {{"annotations", {{"kubectl.kubernetes.io/restartedAt", NowRfc3339()}}}}}}}}}};
  auto result = Request("PATCH", path, "application/strategic-merge-patch+json", patch.dump());
  if (result.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(
        absl::StrCat("deployment ", ns, "/", name, " not found (the sandbox has default/greeter)"));
  }
  return result.status();
}

absl::Status SandboxClient::SetPodFault(const std::string& ns, const std::string& pod,
                                        const PodFault& fault) {
  std::string path = absl::StrCat("/api/v1/namespaces/", ns, "/pods/", pod);
  // A merge patch removes a key set to null, so one request states the whole fault.
  nlohmann::json annotations = nlohmann::json::object();
  for (const std::string& key : PodFaultAnnotationKeys()) annotations[key] = nullptr;
  for (const auto& [key, value] : PodFaultAnnotations(fault)) annotations[key] = value;
  nlohmann::json patch = {{"metadata", {{"annotations", annotations}}}};
  auto result = Request("PATCH", path, "application/merge-patch+json", patch.dump());
  if (result.status().code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(
        absl::StrCat("pod ", ns, "/", pod, " not found (list the pods with `kubectl get pods`)"));
  }
  return result.status();
}

absl::Status SandboxClient::ClearPodFault(const std::string& ns, const std::string& pod) {
  return SetPodFault(ns, pod, PodFault{});
}

}  // namespace podlb::sandbox
