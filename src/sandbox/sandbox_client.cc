#include "sandbox/sandbox_client.h"

#include <curl/curl.h>

#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "sandbox/controllers/store_watch.h"
#include "yaml-cpp/yaml.h"

namespace podlb::sandbox {
namespace {

size_t AppendBody(char* data, size_t size, size_t count, void* user) {
  static_cast<std::string*>(user)->append(data, size * count);
  return size * count;
}

// Finds the map in `list` whose "name" is `name` and returns its `field`; the first if no name.
YAML::Node Named(const YAML::Node& list, const std::string& name, const std::string& field) {
  if (!list || !list.IsSequence()) return YAML::Node();
  for (const auto& item : list) {
    if (name.empty() || item["name"].as<std::string>("") == name) return item[field];
  }
  return YAML::Node();
}

}  // namespace

absl::StatusOr<KubeconfigCredentials> LoadKubeconfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("no kubeconfig at ", path,
                     ": is the sandbox running? start it with `podlb sandbox --state-dir DIR`"));
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    YAML::Node root = YAML::Load(text.str());
    std::string context_name = root["current-context"].as<std::string>("");
    YAML::Node context = Named(root["contexts"], context_name, "context");
    std::string cluster_name = context ? context["cluster"].as<std::string>("") : "";
    std::string user_name = context ? context["user"].as<std::string>("") : "";
    YAML::Node cluster = Named(root["clusters"], cluster_name, "cluster");
    YAML::Node user = Named(root["users"], user_name, "user");
    KubeconfigCredentials creds;
    if (cluster) creds.server = cluster["server"].as<std::string>("");
    if (creds.server.empty()) {
      return absl::InvalidArgumentError(absl::StrCat("kubeconfig ", path, ": no cluster server"));
    }
    std::string ca_data = cluster["certificate-authority-data"].as<std::string>("");
    if (!ca_data.empty() && !absl::Base64Unescape(ca_data, &creds.ca_pem)) {
      return absl::InvalidArgumentError(
          absl::StrCat("kubeconfig ", path, ": certificate-authority-data is not base64"));
    }
    if (user) creds.token = user["token"].as<std::string>("");
    return creds;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("kubeconfig ", path, " is not valid YAML: ", e.what()));
  }
}

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
        " (is `podlb sandbox --state-dir DIR` still running?)"));
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

}  // namespace podlb::sandbox
