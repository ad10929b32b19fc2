#include "sandbox/pods/routing_pod_runtime.h"

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "sandbox/seed_objects.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

const json& Containers(const json& pod_spec) {
  static const json* const kNone = new json(json::array());
  auto it = pod_spec.find("containers");
  return it != pod_spec.end() && it->is_array() ? *it : *kNone;
}

std::string ImageOf(const json& container) {
  if (!container.is_object()) return "";
  auto it = container.find("image");
  return it != container.end() && it->is_string() ? it->get<std::string>() : "";
}

}  // namespace

ImageKind ClassifyImage(const std::string& image) {
  // [registry[:port]/]path[:tag][@digest]: the tag's colon comes after the last slash, a
  // registry port's before it.
  std::string path = image.substr(0, image.find('@'));
  size_t slash = path.rfind('/');
  size_t colon = path.rfind(':');
  if (colon != std::string::npos && (slash == std::string::npos || colon > slash)) {
    path.resize(colon);
  }
  std::string last = path.substr(path.rfind('/') + 1);
  if (last == "podlb" || last == "podlb-demo") return ImageKind::kPodlb;
  const std::string backend = kBackendPodImage;
  if (path == backend || path.ends_with("/" + backend)) return ImageKind::kBackend;
  return ImageKind::kOther;
}

RoutingPodRuntime::RoutingPodRuntime(PodRuntime& backends, PodRuntime* podlb)
    : backends_(backends), podlb_(podlb) {}

absl::StatusOr<PodRuntime*> RoutingPodRuntime::Route(const json& pod) const {
  static const json* const kNoSpec = new json(json::object());
  const json& spec = pod.is_object() && pod.contains("spec") ? pod["spec"] : *kNoSpec;
  const json& containers = Containers(spec);
  if (containers.empty()) return absl::InvalidArgumentError("the pod has no containers to run");
  bool podlb = false;
  std::string podlb_image;
  for (const auto& container : containers) {
    std::string image = ImageOf(container);
    switch (ClassifyImage(image)) {
      case ImageKind::kOther:
        return absl::FailedPreconditionError(absl::StrCat(
            "Failed to pull image \"", image,
            "\": the sandbox runs only podlb's images (podlb, podlb-demo) and its gRPC test "
            "backend (",
            kBackendPodImage, ")"));
      case ImageKind::kPodlb:
        if (!podlb) podlb_image = image;
        podlb = true;
        break;
      case ImageKind::kBackend:
        break;
    }
  }
  if (!podlb) return &backends_;
  if (podlb_ == nullptr) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Failed to pull image \"", podlb_image,
        "\": podlb's image runs only under `podlb sandbox`, as a process of the podlb binary; "
        "this sandbox was started without a runtime for it"));
  }
  // A pod that mixes podlb's image with the backend's is the podlb runtime's to judge.
  return podlb_;
}

absl::Status RoutingPodRuntime::CanRun(const json& pod) const {
  auto runtime = Route(pod);
  if (!runtime.ok()) return runtime.status();
  return (*runtime)->CanRun(pod);
}

absl::Status RoutingPodRuntime::StartPod(const PodLaunch& launch) {
  auto runtime = Route(launch.pod);
  if (!runtime.ok()) return runtime.status();
  if (auto status = (*runtime)->StartPod(launch); !status.ok()) return status;
  absl::MutexLock lock(&mu_);
  started_[launch.name] = *runtime;
  return absl::OkStatus();
}

PodRuntime* RoutingPodRuntime::Started(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = started_.find(name);
  return it == started_.end() ? nullptr : it->second;
}

absl::Status RoutingPodRuntime::ProbeReadiness(const std::string& name) {
  PodRuntime* runtime = Started(name);
  if (runtime == nullptr) return absl::NotFoundError("pod " + name + " is not running");
  return runtime->ProbeReadiness(name);
}

void RoutingPodRuntime::BeginTermination(const std::string& name) {
  if (PodRuntime* runtime = Started(name)) runtime->BeginTermination(name);
}

void RoutingPodRuntime::SetFault(const std::string& name, const PodFault& fault) {
  if (PodRuntime* runtime = Started(name)) runtime->SetFault(name, fault);
}

void RoutingPodRuntime::StopPod(const std::string& name, std::chrono::milliseconds deadline) {
  PodRuntime* runtime = Started(name);
  if (runtime == nullptr) return;
  runtime->StopPod(name, deadline);
  absl::MutexLock lock(&mu_);
  auto it = started_.find(name);
  // A pod of the same name may have been started again meanwhile; keep that one's route.
  if (it != started_.end() && it->second == runtime) started_.erase(it);
}

bool RoutingPodRuntime::DrainsItself(const std::string& name) const {
  PodRuntime* runtime = Started(name);
  return runtime != nullptr && runtime->DrainsItself(name);
}

std::optional<PodOutcome> RoutingPodRuntime::Outcome(const std::string& name) const {
  PodRuntime* runtime = Started(name);
  return runtime == nullptr ? std::nullopt : runtime->Outcome(name);
}

}  // namespace podlb::sandbox
