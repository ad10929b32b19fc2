#include "sandbox/controllers/deployment_controller.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/logging.h"

namespace podlb::sandbox {

using json = nlohmann::json;

DeploymentController::DeploymentController(ResourceStore& store, PodRuntime& runtime,
                                           PodIpAllocator& ips, DeploymentControllerOptions options)
    : store_(store),
      options_(std::move(options)),
      lifecycle_(store, runtime, ips, queue_, "Deployment", options_) {}

DeploymentController::~DeploymentController() { Stop(); }

absl::Status DeploymentController::Start() {
  if (options_.nodes.empty()) return absl::InvalidArgumentError("deployment controller: no nodes");
  deployment_watch_ = std::make_unique<StoreWatch>(
      store_, "deployments",
      [this](const WatchEvent& event) { queue_.Add(ObjectKey(event.object)); });
  pod_watch_ = std::make_unique<StoreWatch>(
      store_, "pods", [this](const WatchEvent& event) { lifecycle_.OnPodEvent(event); });
  deployment_watch_->Start();
  pod_watch_->Start();
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void DeploymentController::Stop() {
  if (deployment_watch_) deployment_watch_->Stop();
  if (pod_watch_) pod_watch_->Stop();
  queue_.ShutDown();
  if (thread_.joinable()) thread_.join();
  lifecycle_.JoinStoppers();
}

void DeploymentController::Run() {
  while (auto key = queue_.Get()) {
    try {
      lifecycle_.Reconcile(
          "deployments", *key,
          [this](const json& deployment, PodMap& pods) { return ScalePods(deployment, pods); },
          [this](const json& deployment, const PodMap& pods) {
            UpdateDeploymentStatus(deployment, pods);
          });
    } catch (const std::exception& e) {
      // Malformed objects are bad input, not a reason to stop the controller.
      LogError("deployment controller: cannot reconcile {}: {}", *key, e.what());
    }
  }
}

bool DeploymentController::ScalePods(const json& deployment, PodMap& pods) {
  const json& spec = deployment.value("spec", json::object());
  int desired = std::max(0, spec.value("replicas", 1));
  std::string hash = TemplateHash(spec.value("template", json::object()));

  std::vector<ManagedPod*> current, old;
  for (auto& [pod_name, pod] : pods) {
    if (!pod.live()) continue;
    (pod.template_hash == hash ? current : old).push_back(&pod);
  }
  bool changed = false;
  auto terminate = [&](ManagedPod* pod) {
    lifecycle_.TerminatePod(*pod);
    changed = true;
  };
  // Scale-down order: pods not ready yet first, then the newest (as the ReplicaSet controller).
  auto newest_first = [](ManagedPod* a, ManagedPod* b) {
    bool a_ready = a->phase == PodPhase::kReady, b_ready = b->phase == PodPhase::kReady;
    if (a_ready != b_ready) return !a_ready;
    return a->seq > b->seq;
  };
  std::sort(current.begin(), current.end(), newest_first);
  int surplus = static_cast<int>(current.size()) - desired;
  for (int i = 0; i < surplus; ++i) terminate(current[i]);
  if (surplus > 0) current.erase(current.begin(), current.begin() + surplus);

  // Rolling update, maxSurge 1 / maxUnavailable 0: at most desired+1 pods, and an old pod goes
  // only while more than `desired` pods are ready.
  int max_total = old.empty() ? desired : desired + 1;
  int total = static_cast<int>(current.size() + old.size());
  int to_create = std::min(max_total - total, desired - static_cast<int>(current.size()));
  const std::string prefix = absl::StrCat(deployment["metadata"].value("name", ""), "-", hash, "-");
  for (int i = 0; i < to_create; ++i) {
    const NodeInfo& node = options_.nodes[next_node_++ % options_.nodes.size()];
    ManagedPod* pod = lifecycle_.CreatePod(deployment, prefix, hash,
                                           {{"pod-template-hash", hash}}, node.name, pods);
    // Not created: CreatePod logged why and queued the Deployment again after a back-off; a
    // change reported here would run it again at once, creating a pod every millisecond.
    if (pod == nullptr) break;
    current.push_back(pod);
    changed = true;
  }
  std::sort(old.begin(), old.end(), [](ManagedPod* a, ManagedPod* b) { return a->seq < b->seq; });
  std::vector<ManagedPod*> old_ready;
  for (ManagedPod* pod : old) {
    if (pod->phase == PodPhase::kReady) {
      old_ready.push_back(pod);
    } else {
      terminate(pod);  // an old pod that serves nothing can go at any time
    }
  }
  int ready = static_cast<int>(old_ready.size());
  for (ManagedPod* pod : current) ready += pod->phase == PodPhase::kReady ? 1 : 0;
  int removable = ready - desired;
  for (int i = 0; i < removable && i < static_cast<int>(old_ready.size()); ++i) {
    terminate(old_ready[i]);
  }
  return changed;
}

void DeploymentController::UpdateDeploymentStatus(const json& deployment, const PodMap& pods) {
  std::string hash =
      TemplateHash(deployment.value("spec", json::object()).value("template", json::object()));
  int desired = std::max(0, deployment.value("spec", json::object()).value("replicas", 1));
  int replicas = 0, updated = 0, ready = 0;
  for (const auto& [pod_name, pod] : pods) {
    if (!pod.live()) continue;
    ++replicas;
    if (pod.template_hash == hash) ++updated;
    if (pod.phase == PodPhase::kReady) ++ready;
  }
  const json& meta = deployment["metadata"];
  json status = {{"replicas", replicas},
                 {"updatedReplicas", updated},
                 {"readyReplicas", ready},
                 {"availableReplicas", ready},
                 {"unavailableReplicas", std::max(0, desired - ready)},
                 {"observedGeneration", meta.value("generation", int64_t{0})}};
  json conditions = json::array();
  conditions.push_back(
      {{"type", "Available"},
       {"status", ready >= desired ? "True" : "False"},
       {"reason", ready >= desired ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable"}});
  bool complete = updated == desired && replicas == desired && ready == desired;
  conditions.push_back({{"type", "Progressing"},
                        {"status", "True"},
                        {"reason", complete ? "NewReplicaSetAvailable" : "ReplicaSetUpdated"}});
  status["conditions"] = conditions;
  auto result = MutateObject(store_, "deployments", meta.value("namespace", "default"),
                             meta.value("name", ""), [&](json& object) {
                               if (object.value("status", json()) == status) return false;
                               object["status"] = status;
                               return true;
                             });
  if (!result.ok() && result.code() != absl::StatusCode::kNotFound) {
    LogWarn("deployment controller: cannot update status of {}/{}: {}", meta.value("namespace", ""),
            meta.value("name", ""), std::string(result.message()));
  }
}

}  // namespace podlb::sandbox
