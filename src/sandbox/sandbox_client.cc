#include "sandbox/sandbox_client.h"

#include "absl/strings/str_cat.h"
#include "discovery/kubernetes/api_client.h"
#include "sandbox/controllers/store_watch.h"

namespace podlb::sandbox {

absl::StatusOr<nlohmann::json> SandboxClient::Request(const std::string& method,
                                                      const std::string& path,
                                                      const std::string& content_type,
                                                      const std::string& body) {
  auto client = ApiClient::Create(creds_);
  if (!client.ok()) return client.status();
  auto answer = SendJson(**client, method, path, content_type, body);
  if (absl::IsUnavailable(answer.status())) {
    return absl::UnavailableError(
        absl::StrCat("cannot reach the sandbox (is the sandbox that wrote these credentials "
                     "still running?): ",
                     answer.status().message()));
  }
  return answer;
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

absl::Status SandboxClient::AnnotateService(
    const std::string& ns, const std::string& name,
    const std::map<std::string, std::string>& annotations) {
  nlohmann::json patch = {{"metadata", {{"annotations", annotations}}}};
  return Request("PATCH", absl::StrCat("/api/v1/namespaces/", ns, "/services/", name),
                 "application/merge-patch+json", patch.dump())
      .status();
}

absl::Status SandboxClient::ClearPodFault(const std::string& ns, const std::string& pod) {
  return SetPodFault(ns, pod, PodFault{});
}

}  // namespace podlb::sandbox
