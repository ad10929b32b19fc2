#include "sandbox/controllers/deployment_controller.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/hash.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

// Kubernetes' SafeEncodeString alphabet: no vowels, no look-alikes.
constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
constexpr size_t kAlphabetSize = sizeof(kAlphabet) - 1;

// pod-template-hash: changes exactly when the pod template changes.
std::string TemplateHash(const json& pod_template) {
  uint64_t h = Fnv1a64(pod_template.dump());
  std::string out;
  for (int i = 0; i < 10; ++i) {
    out.push_back(kAlphabet[h % kAlphabetSize]);
    h /= kAlphabetSize;
  }
  return out;
}

std::pair<std::string, std::string> SplitKey(const std::string& key) {
  auto slash = key.find('/');
  return {key.substr(0, slash), key.substr(slash + 1)};
}

uint16_t ContainerPort(const json& pod_spec, uint16_t fallback) {
  for (const auto& container : pod_spec.value("containers", json::array())) {
    for (const auto& port : container.value("ports", json::array())) {
      int p = port.value("containerPort", 0);
      if (p > 0 && p < 65536) return static_cast<uint16_t>(p);
    }
  }
  return fallback;
}

void SetCondition(json& status, const std::string& type, bool value) {
  json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  std::string text = value ? "True" : "False";
  for (auto& c : conditions) {
    if (c.value("type", "") == type) {
      if (c.value("status", "") != text) {
        c["status"] = text;
        c["lastTransitionTime"] = NowRfc3339();
      }
      return;
    }
  }
  conditions.push_back({{"type", type}, {"status", text}, {"lastTransitionTime", NowRfc3339()}});
}

// One status per container of the pod spec, as the kubelet reports them (kubectl's READY column).
json ContainerStatuses(const json& pod_spec, bool ready) {
  json statuses = json::array();
  for (const auto& c : pod_spec.value("containers", json::array())) {
    json state = ready ? json{{"running", {{"startedAt", NowRfc3339()}}}}
                       : json{{"waiting", {{"reason", "ContainerCreating"}}}};
    statuses.push_back({{"name", c.value("name", "")},
                        {"image", c.value("image", "")},
                        {"imageID", ""},
                        {"ready", ready},
                        {"started", ready},
                        {"restartCount", 0},
                        {"state", state}});
  }
  return statuses;
}

std::map<std::string, std::string> AnnotationsOf(const json& meta) {
  std::map<std::string, std::string> annotations;
  json given = meta.value("annotations", json::object());
  if (!given.is_object()) return annotations;
  for (const auto& [key, value] : given.items()) {
    if (value.is_string()) annotations[key] = value.get<std::string>();
  }
  return annotations;
}

}  // namespace

DeploymentController::DeploymentController(ResourceStore& store, PodRuntime& runtime,
                                           PodIpAllocator& ips, DeploymentControllerOptions options)
    : store_(store), runtime_(runtime), ips_(ips), options_(std::move(options)) {}

DeploymentController::~DeploymentController() { Stop(); }

absl::Status DeploymentController::Start() {
  if (options_.nodes.empty()) return absl::InvalidArgumentError("deployment controller: no nodes");
  deployment_watch_ = std::make_unique<StoreWatch>(
      store_, "deployments",
      [this](const WatchEvent& event) { queue_.Add(ObjectKey(event.object)); });
  pod_watch_ = std::make_unique<StoreWatch>(store_, "pods",
                                            [this](const WatchEvent& event) { OnPodEvent(event); });
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
  for (auto& [key, pods] : pods_) {
    for (auto& [name, pod] : pods) {
      if (pod.stopper && pod.stopper->joinable()) pod.stopper->join();
    }
  }
}

void DeploymentController::OnPodEvent(const WatchEvent& event) {
  // Only pods we own matter; their owner reference names the deployment.
  const json& meta = event.object.value("metadata", json::object());
  for (const auto& owner : meta.value("ownerReferences", json::array())) {
    if (owner.value("kind", "") != "Deployment") continue;
    std::string deployment_key = meta.value("namespace", "") + "/" + owner.value("name", "");
    std::string pod_key = deployment_key + "/" + meta.value("name", "");
    if (event.type == "DELETED") {
      seen_faults_.erase(pod_key);
      {
        absl::MutexLock lock(&pod_events_mu_);
        deleted_externally_.insert(pod_key);
        changed_faults_.erase(pod_key);
      }
      queue_.Add(deployment_key);
      continue;
    }
    // The API server validated the annotations on write; a pod it let through with a fault the
    // parser rejects would be a bug between the two, so the pod keeps the fault it has.
    auto fault = ParsePodFault(AnnotationsOf(meta));
    if (!fault.ok()) {
      LogWarn("pod {}: ignoring its fault annotations: {}", pod_key,
              std::string(fault.status().message()));
      continue;
    }
    auto seen = seen_faults_.find(pod_key);
    if (seen != seen_faults_.end() ? seen->second == *fault : !fault->active()) continue;
    seen_faults_[pod_key] = *fault;
    {
      absl::MutexLock lock(&pod_events_mu_);
      changed_faults_[pod_key] = *fault;
    }
    queue_.Add(deployment_key);
  }
}

void DeploymentController::Run() {
  while (auto key = queue_.Get()) {
    try {
      Reconcile(*key);
    } catch (const std::exception& e) {
      // Malformed objects are bad input, not a reason to stop the controller.
      LogError("deployment controller: cannot reconcile {}: {}", *key, e.what());
    }
  }
}

void DeploymentController::Reconcile(const std::string& key) {
  auto [ns, name] = SplitKey(key);
  PodMap& pods = pods_[key];
  HarvestStopped(key, pods);
  ApplyFaults(key, pods);
  bool changed = false;
  ProbeAndExpire(ns, key, pods, changed);
  auto deployment = store_.Get("deployments", ns, name);
  if (deployment.ok() && RunsPodlbImage(*deployment)) {
    // podlb's own workloads (deploy/) are not backend pods; running them as processes of the
    // podlb binary is a runtime of its own, not this controller's. Stored, not run.
    if (podlb_workloads_.insert(key).second) {
      LogInfo("deployment controller: {} runs podlb's image; not started as a backend pod", key);
    }
    deployment = absl::NotFoundError("a podlb workload");
  } else {
    podlb_workloads_.erase(key);
  }
  if (!deployment.ok()) {
    for (auto& [pod_name, pod] : pods) {
      if (pod.phase == PodPhase::kStarting || pod.phase == PodPhase::kReady) {
        TerminatePod(ns, pod);
        changed = true;
      }
    }
  } else {
    changed |= ScalePods(*deployment, pods);
    UpdateDeploymentStatus(*deployment, pods);
  }
  if (changed) queue_.Add(key);
  std::optional<WorkQueue::Clock::time_point> next;
  for (const auto& [pod_name, pod] : pods) {
    std::optional<WorkQueue::Clock::time_point> due;
    if (pod.phase == PodPhase::kStarting) due = pod.next_probe;
    if (pod.phase == PodPhase::kTerminating) due = pod.stop_at;
    if (due && (!next || *due < *next)) next = due;
  }
  if (next) queue_.AddAt(key, *next);
  if (pods.empty() && !deployment.ok()) pods_.erase(key);
}

bool DeploymentController::RunsPodlbImage(const json& deployment) {
  const json& containers = deployment.value("spec", json::object())
                               .value("template", json::object())
                               .value("spec", json::object())
                               .value("containers", json::array());
  for (const auto& container : containers) {
    std::string image = container.is_object() ? container.value("image", "") : "";
    std::string repository = image.substr(0, image.find_first_of(":@"));
    repository = repository.substr(repository.rfind('/') + 1);
    if (repository == "podlb" || repository == "podlb-demo") return true;
  }
  return false;
}

void DeploymentController::HarvestStopped(const std::string& key, PodMap& pods) {
  std::string ns = SplitKey(key).first;
  std::set<std::string> deleted;
  {
    absl::MutexLock lock(&pod_events_mu_);
    auto it = deleted_externally_.lower_bound(key + "/");
    while (it != deleted_externally_.end() && it->starts_with(key + "/")) {
      deleted.insert(it->substr(key.size() + 1));
      it = deleted_externally_.erase(it);
    }
  }
  for (const auto& pod_name : deleted) {
    auto it = pods.find(pod_name);
    if (it == pods.end() || it->second.phase == PodPhase::kStopping) continue;
    // `kubectl delete pod`: the object is gone already; stop the containers right away and let
    // the scale step replace the pod.
    LogInfo("pod {}/{} was deleted; stopping it", ns, pod_name);
    it->second.delete_object = false;
    runtime_.BeginTermination(pod_name);
    BeginStop(key, it->second);
  }
  for (auto it = pods.begin(); it != pods.end();) {
    ManagedPod& pod = it->second;
    if (pod.phase != PodPhase::kStopping || !pod.stopped->load()) {
      ++it;
      continue;
    }
    pod.stopper->join();
    if (pod.delete_object) {
      auto deleted_pod = store_.Delete("pods", ns, pod.name);
      if (!deleted_pod.ok() && deleted_pod.status().code() != absl::StatusCode::kNotFound) {
        LogWarn("deployment controller: cannot delete pod {}/{}: {}", ns, pod.name,
                std::string(deleted_pod.status().message()));
      }
    }
    ips_.Release(pod.ip);
    it = pods.erase(it);
  }
}

void DeploymentController::ApplyFaults(const std::string& key, PodMap& pods) {
  std::map<std::string, PodFault> changed;
  {
    absl::MutexLock lock(&pod_events_mu_);
    auto it = changed_faults_.lower_bound(key + "/");
    while (it != changed_faults_.end() && it->first.starts_with(key + "/")) {
      changed[it->first.substr(key.size() + 1)] = it->second;
      it = changed_faults_.erase(it);
    }
  }
  for (const auto& [pod_name, fault] : changed) {
    auto it = pods.find(pod_name);
    // A pod on its way out keeps its fault: the annotation change raced with its deletion.
    if (it == pods.end() || it->second.phase == PodPhase::kStopping) continue;
    if (it->second.fault == fault) continue;
    it->second.fault = fault;
    runtime_.SetFault(pod_name, fault);
  }
}

void DeploymentController::ProbeAndExpire(const std::string& ns, const std::string& key,
                                          PodMap& pods, bool& changed) {
  auto now = WorkQueue::Clock::now();
  for (auto& [pod_name, pod] : pods) {
    if (pod.phase == PodPhase::kStarting && pod.next_probe <= now) {
      if (!runtime_.ProbeReadiness(pod_name).ok()) {
        pod.next_probe = now + options_.probe_period;
        continue;
      }
      auto status = MutateObject(store_, "pods", ns, pod_name, [](json& object) {
        json& s = object["status"];
        s["phase"] = "Running";
        s["containerStatuses"] = ContainerStatuses(object.value("spec", json::object()), true);
        SetCondition(s, "ContainersReady", true);
        SetCondition(s, "Ready", true);
        return true;
      });
      if (!status.ok()) {
        LogWarn("deployment controller: cannot mark pod {}/{} ready: {}", ns, pod_name,
                std::string(status.message()));
        pod.next_probe = now + options_.probe_period;
        continue;
      }
      pod.phase = PodPhase::kReady;
      changed = true;
    } else if (pod.phase == PodPhase::kTerminating && pod.stop_at <= now) {
      BeginStop(key, pod);
    }
  }
}

bool DeploymentController::ScalePods(const json& deployment, PodMap& pods) {
  const json& spec = deployment.value("spec", json::object());
  int desired = std::max(0, spec.value("replicas", 1));
  std::string hash = TemplateHash(spec.value("template", json::object()));
  std::string ns = deployment["metadata"].value("namespace", "default");

  std::vector<ManagedPod*> current, old;
  for (auto& [pod_name, pod] : pods) {
    if (pod.phase != PodPhase::kStarting && pod.phase != PodPhase::kReady) continue;
    (pod.template_hash == hash ? current : old).push_back(&pod);
  }
  bool changed = false;
  auto terminate = [&](ManagedPod* pod) {
    TerminatePod(ns, *pod);
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
  for (int i = 0; i < to_create; ++i) {
    CreatePod(deployment, hash, pods);
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

std::string DeploymentController::RandomSuffix(size_t length) {
  std::uniform_int_distribution<size_t> pick(0, kAlphabetSize - 1);
  std::string out;
  for (size_t i = 0; i < length; ++i) out.push_back(kAlphabet[pick(random_)]);
  return out;
}

void DeploymentController::CreatePod(const json& deployment, const std::string& hash,
                                     PodMap& pods) {
  const json& meta = deployment["metadata"];
  std::string ns = meta.value("namespace", "default");
  std::string deployment_name = meta.value("name", "");
  std::string key = ns + "/" + deployment_name;
  json pod_template = deployment.value("spec", json::object()).value("template", json::object());
  json template_meta = pod_template.value("metadata", json::object());
  json labels = template_meta.value("labels", json::object());
  labels["pod-template-hash"] = hash;
  json spec = pod_template.value("spec", json::object());
  const NodeInfo& node = options_.nodes[next_node_++ % options_.nodes.size()];
  spec["nodeName"] = node.name;
  uint16_t port = ContainerPort(spec, options_.default_pod_port);
  std::string ip = ips_.Allocate();

  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"namespace", ns},
                {"labels", labels},
                {"ownerReferences", json::array({{{"apiVersion", "apps/v1"},
                                                  {"kind", "Deployment"},
                                                  {"name", deployment_name},
                                                  {"uid", meta.value("uid", "")},
                                                  {"controller", true},
                                                  {"blockOwnerDeletion", true}}})}}},
              {"spec", spec},
              {"status",
               {{"phase", "Pending"},
                {"hostIP", "127.0.0.1"},
                {"podIP", ip},
                {"podIPs", json::array({{{"ip", ip}}})},
                {"startTime", NowRfc3339()}}}};
  if (template_meta.contains("annotations")) {
    pod["metadata"]["annotations"] = template_meta["annotations"];
  }
  SetCondition(pod["status"], "PodScheduled", true);
  SetCondition(pod["status"], "Initialized", true);
  SetCondition(pod["status"], "ContainersReady", false);
  SetCondition(pod["status"], "Ready", false);
  pod["status"]["containerStatuses"] = ContainerStatuses(spec, false);

  std::string name;
  absl::Status created;
  for (int attempt = 0; attempt < 5; ++attempt) {
    name = absl::StrCat(deployment_name, "-", hash, "-", RandomSuffix(5));
    pod["metadata"]["name"] = name;
    auto result = store_.Create("pods", ns, pod);
    created = result.status();
    if (created.code() != absl::StatusCode::kAlreadyExists) break;
  }
  // The template's annotations, validated by the API server when the Deployment was written.
  PodFault fault = ParsePodFault(AnnotationsOf(pod["metadata"])).value_or(PodFault{});
  if (created.ok()) {
    created = runtime_.StartPod(
        {.name = name, .ns = ns, .ip = ip, .node = node.name, .port = port, .fault = fault, .pod = pod});
  }
  if (!created.ok()) {
    start_errors_.Log(absl::StrCat("deployment ", key, ": cannot start pod ", name, ": ",
                                   std::string(created.message())));
    (void)store_.Delete("pods", ns, name);
    ips_.Release(ip);
    queue_.AddAfter(key, std::chrono::seconds(1));  // back off, as CrashLoopBackOff would
    return;
  }
  start_errors_.Clear();
  ManagedPod managed;
  managed.name = name;
  managed.ip = ip;
  managed.template_hash = hash;
  managed.fault = fault;
  managed.seq = next_seq_++;
  managed.next_probe = WorkQueue::Clock::now() + options_.readiness_delay;
  pods[name] = std::move(managed);
  LogInfo("deployment {}: pod {} started at {}:{} on {}", key, name, ip, port, node.name);
}

void DeploymentController::TerminatePod(const std::string& ns, ManagedPod& pod) {
  // What the API server does on DELETE with a grace period: the object stays, marked.
  auto grace_seconds = static_cast<int64_t>(std::ceil(options_.grace_period.count() / 1000.0));
  auto status = MutateObject(store_, "pods", ns, pod.name, [&](json& object) {
    object["metadata"]["deletionTimestamp"] = NowRfc3339();
    object["metadata"]["deletionGracePeriodSeconds"] = grace_seconds;
    return true;
  });
  if (!status.ok() && status.code() != absl::StatusCode::kNotFound) {
    LogWarn("deployment controller: cannot mark pod {}/{} terminating: {}", ns, pod.name,
            std::string(status.message()));
  }
  runtime_.BeginTermination(pod.name);
  LogInfo("pod {}/{} terminating ({} ms grace)", ns, pod.name, options_.grace_period.count());
  pod.phase = PodPhase::kTerminating;
  pod.stop_at = WorkQueue::Clock::now() + options_.grace_period;
}

void DeploymentController::BeginStop(const std::string& key, ManagedPod& pod) {
  pod.phase = PodPhase::kStopping;
  pod.stopped = std::make_shared<std::atomic<bool>>(false);
  // Shutdown blocks until in-flight calls finish; other pods must not wait for it.
  pod.stopper = std::make_shared<std::thread>(
      [this, key, name = pod.name, stopped = pod.stopped, deadline = options_.shutdown_deadline] {
        runtime_.StopPod(name, deadline);
        stopped->store(true);
        queue_.Add(key);
      });
}

void DeploymentController::UpdateDeploymentStatus(const json& deployment, const PodMap& pods) {
  std::string hash =
      TemplateHash(deployment.value("spec", json::object()).value("template", json::object()));
  int desired = std::max(0, deployment.value("spec", json::object()).value("replicas", 1));
  int replicas = 0, updated = 0, ready = 0;
  for (const auto& [pod_name, pod] : pods) {
    if (pod.phase != PodPhase::kStarting && pod.phase != PodPhase::kReady) continue;
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
