#include "sandbox/controllers/pod_lifecycle.h"

#include <cmath>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/hash.h"
#include "sandbox/controllers/event_recorder.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

// Kubernetes' SafeEncodeString alphabet: no vowels, no look-alikes.
constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
constexpr size_t kAlphabetSize = sizeof(kAlphabet) - 1;

// The reason a container waits when its image can never run here. ErrImageNeverPull, not
// ErrImagePull: the kubelet does not retry it (no ImagePullBackOff), and neither does the sandbox.
constexpr char kImageRefused[] = "ErrImageNeverPull";

uint16_t ContainerPort(const json& pod_spec, uint16_t fallback) {
  for (const auto& container : pod_spec.value("containers", json::array())) {
    for (const auto& port : container.value("ports", json::array())) {
      int p = port.value("containerPort", 0);
      if (p > 0 && p < 65536) return static_cast<uint16_t>(p);
    }
  }
  return fallback;
}

// One status per container of the pod spec, as the kubelet reports them (kubectl's READY
// column): running once ready, else waiting with `reason` (and `message` when it has one).
json ContainerStatuses(const json& pod_spec, bool ready,
                       const std::string& reason = "ContainerCreating",
                       const std::string& message = "") {
  json statuses = json::array();
  for (const auto& c : pod_spec.value("containers", json::array())) {
    json waiting = {{"reason", reason}};
    if (!message.empty()) waiting["message"] = message;
    json state =
        ready ? json{{"running", {{"startedAt", NowRfc3339()}}}} : json{{"waiting", waiting}};
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

std::vector<std::string> ContainerNames(const json& pod_spec) {
  std::vector<std::string> names;
  for (const auto& c : pod_spec.value("containers", json::array())) {
    names.push_back(c.value("name", ""));
  }
  return names;
}

std::chrono::milliseconds TerminationGrace(const json& pod_spec) {
  auto it = pod_spec.find("terminationGracePeriodSeconds");
  if (it == pod_spec.end() || !it->is_number_integer() || it->get<int64_t>() < 0) {
    return std::chrono::seconds(30);  // the API server's default
  }
  return std::chrono::seconds(it->get<int64_t>());
}

}  // namespace

std::string TemplateHash(const json& pod_template) {
  uint64_t h = Fnv1a64(pod_template.dump());
  std::string out;
  for (int i = 0; i < 10; ++i) {
    out.push_back(kAlphabet[h % kAlphabetSize]);
    h /= kAlphabetSize;
  }
  return out;
}

PodLifecycle::PodLifecycle(ResourceStore& store, PodRuntime& runtime, PodIpAllocator& ips,
                           WorkQueue& queue, std::string owner_kind, PodLifecycleOptions options,
                           std::string owner_api_version)
    : store_(store),
      runtime_(runtime),
      ips_(ips),
      queue_(queue),
      owner_kind_(std::move(owner_kind)),
      options_(options),
      owner_api_version_(std::move(owner_api_version)) {}

void PodLifecycle::OnPodEvent(const WatchEvent& event) {
  // Only pods of our owner kind matter; their owner reference names the workload.
  const json& meta = event.object.value("metadata", json::object());
  for (const auto& owner : meta.value("ownerReferences", json::array())) {
    if (owner.value("kind", "") != owner_kind_) continue;
    std::string owner_key = meta.value("namespace", "") + "/" + owner.value("name", "");
    std::string pod_key = owner_key + "/" + meta.value("name", "");
    if (event.type == "DELETED") {
      seen_faults_.erase(pod_key);
      {
        absl::MutexLock lock(&pod_events_mu_);
        deleted_externally_.insert(pod_key);
        changed_faults_.erase(pod_key);
      }
      queue_.Add(owner_key);
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
    queue_.Add(owner_key);
  }
}

void PodLifecycle::Reconcile(const std::string& resource, const std::string& owner_key,
                             const ManagePods& manage, const WriteStatus& write_status) {
  auto [ns, name] = SplitObjectKey(owner_key);
  PodMap& pods = pods_[owner_key];
  HarvestStopped(owner_key, pods);
  ApplyFaults(owner_key, pods);
  bool changed = ProbeAndExpire(pods);
  auto owner = store_.Get(resource, ns, name);
  if (!owner.ok()) {
    // Deleted: its pods go (the garbage collector's cascade, done here).
    for (auto& [pod_name, pod] : pods) {
      if (pod.live() || pod.finished()) {
        TerminatePod(pod);
        changed = true;
      }
    }
  } else {
    changed |= manage(*owner, pods);
    write_status(*owner, pods);
  }
  if (changed) queue_.Add(owner_key);
  if (auto next = NextDue(pods)) queue_.AddAt(owner_key, *next);
  if (pods.empty() && !owner.ok()) pods_.erase(owner_key);
}

void PodLifecycle::HarvestStopped(const std::string& key, PodMap& pods) {
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
    // the owner replace the pod.
    LogInfo("pod {}/{} was deleted; stopping it", it->second.ns, pod_name);
    it->second.delete_object = false;
    runtime_.BeginTermination(pod_name);
    BeginStop(it->second, options_.shutdown_deadline);
  }
  for (auto it = pods.begin(); it != pods.end();) {
    ManagedPod& pod = it->second;
    if (pod.phase != PodPhase::kStopping || !pod.stopped->load()) {
      ++it;
      continue;
    }
    if (pod.stopper) pod.stopper->join();
    if (pod.delete_object) {
      auto deleted_pod = store_.Delete("pods", pod.ns, pod.name);
      if (!deleted_pod.ok() && deleted_pod.status().code() != absl::StatusCode::kNotFound) {
        LogWarn("{} controller: cannot delete pod {}/{}: {}", owner_kind_, pod.ns, pod.name,
                std::string(deleted_pod.status().message()));
      }
    }
    ips_.Release(pod.ip);
    it = pods.erase(it);
  }
}

void PodLifecycle::ApplyFaults(const std::string& key, PodMap& pods) {
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
    if (it->second.phase != PodPhase::kPending) runtime_.SetFault(pod_name, fault);
  }
}

bool PodLifecycle::ProbeAndExpire(PodMap& pods) {
  bool changed = false;
  auto now = WorkQueue::Clock::now();
  for (auto& [pod_name, pod] : pods) {
    if (pod.phase == PodPhase::kStarting || pod.phase == PodPhase::kReady) {
      // The runtime wrote the pod's final status itself; the owner counts it from here on.
      if (auto outcome = runtime_.Outcome(pod_name)) {
        pod.phase = *outcome == PodOutcome::kSucceeded ? PodPhase::kSucceeded : PodPhase::kFailed;
        changed = true;
        continue;
      }
    }
    if (pod.phase == PodPhase::kStarting && pod.next_probe <= now) {
      if (!runtime_.ProbeReadiness(pod_name).ok()) {
        pod.next_probe = now + options_.probe_period;
        continue;
      }
      auto status = MutateObject(store_, "pods", pod.ns, pod_name, [](json& object) {
        json& s = object["status"];
        // Finished between the probe and this write: the kubelet's final status stands.
        std::string phase = s.value("phase", "");
        if (phase == "Succeeded" || phase == "Failed") return false;
        s["phase"] = "Running";
        s["containerStatuses"] = ContainerStatuses(object.value("spec", json::object()), true);
        SetCondition(s, "ContainersReady", true);
        SetCondition(s, "Ready", true);
        return true;
      });
      if (!status.ok()) {
        LogWarn("{} controller: cannot mark pod {}/{} ready: {}", owner_kind_, pod.ns, pod_name,
                std::string(status.message()));
        pod.next_probe = now + options_.probe_period;
        continue;
      }
      pod.phase = PodPhase::kReady;
      changed = true;
    } else if (pod.phase == PodPhase::kTerminating && pod.stop_at <= now) {
      BeginStop(pod, options_.shutdown_deadline);
    }
  }
  return changed;
}

std::string PodLifecycle::RandomSuffix(size_t length) {
  std::uniform_int_distribution<size_t> pick(0, kAlphabetSize - 1);
  std::string out;
  for (size_t i = 0; i < length; ++i) out.push_back(kAlphabet[pick(random_)]);
  return out;
}

ManagedPod* PodLifecycle::CreatePod(const json& owner, const std::string& name_prefix,
                                    const std::string& hash, const json& extra_labels,
                                    const std::string& node, PodMap& pods) {
  const json& meta = owner["metadata"];
  std::string ns = meta.value("namespace", "default");
  std::string owner_name = meta.value("name", "");
  std::string key = ns + "/" + owner_name;
  json pod_template = owner.value("spec", json::object()).value("template", json::object());
  json template_meta = pod_template.value("metadata", json::object());
  json labels = template_meta.value("labels", json::object());
  for (const auto& [label, value] : extra_labels.items()) labels[label] = value;
  json spec = pod_template.value("spec", json::object());
  spec["nodeName"] = node;
  uint16_t port = ContainerPort(spec, options_.default_pod_port);
  std::string ip = ips_.Allocate();

  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata",
               {{"namespace", ns},
                {"labels", labels},
                {"ownerReferences", json::array({{{"apiVersion", owner_api_version_},
                                                  {"kind", owner_kind_},
                                                  {"name", owner_name},
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
  absl::StatusOr<json> created;
  for (int attempt = 0; attempt < 5; ++attempt) {
    name = name_prefix + RandomSuffix(5);
    pod["metadata"]["name"] = name;
    created = store_.Create("pods", ns, pod);
    if (created.status().code() != absl::StatusCode::kAlreadyExists) break;
  }
  // The template's annotations, validated by the API server when the owner was written.
  PodFault fault = ParsePodFault(AnnotationsOf(pod["metadata"])).value_or(PodFault{});
  ManagedPod managed;
  managed.name = name;
  managed.ns = ns;
  managed.owner_key = key;
  managed.ip = ip;
  managed.node = node;
  managed.template_hash = hash;
  managed.fault = fault;
  managed.termination_grace = TerminationGrace(spec);
  absl::Status status = created.status();
  if (status.ok()) {
    managed.uid = (*created)["metadata"].value("uid", "");
    Event(managed, kEventNormal, "Scheduled",
          absl::StrCat("Successfully assigned ", ns, "/", name, " to ", node), "",
          "default-scheduler");
    // The kubelet's image check: a pod it cannot run stays, Pending, with the reason on its
    // containers and a Warning event, as a pod whose image cannot be pulled does.
    if (absl::Status can_run = runtime_.CanRun(*created); !can_run.ok()) {
      std::string message(can_run.message());
      // The event first: whoever sees the pod's waiting reason finds the event too.
      Event(managed, kEventWarning, "Failed", message);
      auto marked = MutateObject(store_, "pods", ns, name, [&](json& object) {
        json& s = object["status"];
        s["containerStatuses"] =
            ContainerStatuses(object.value("spec", json::object()), false, kImageRefused, message);
        return true;
      });
      if (!marked.ok()) {
        LogWarn("{} controller: cannot mark pod {}/{} pending: {}", owner_kind_, ns, name,
                std::string(marked.message()));
      }
      LogWarn("{} {}: pod {} stays Pending: {}", owner_kind_, key, name, message);
      managed.phase = PodPhase::kPending;
      managed.seq = next_seq_++;
      return &(pods[name] = std::move(managed));
    }
    PodLaunch launch;
    launch.name = name;
    launch.ns = ns;
    launch.ip = ip;
    launch.node = node;
    launch.port = port;
    launch.fault = fault;
    launch.pod = *created;
    launch.termination_grace = managed.termination_grace;
    status = runtime_.StartPod(launch);
  }
  if (!status.ok()) {
    start_errors_.Log(absl::StrCat(owner_kind_, " ", key, ": cannot start pod ", name, ": ",
                                   std::string(status.message())));
    (void)store_.Delete("pods", ns, name);
    ips_.Release(ip);
    queue_.AddAfter(key, std::chrono::seconds(1));  // back off, as CrashLoopBackOff would
    return nullptr;
  }
  start_errors_.Clear();
  for (const auto& container : ContainerNames(spec)) {
    Event(managed, kEventNormal, "Started", "Started container " + container,
          "spec.containers{" + container + "}");
  }
  managed.seq = next_seq_++;
  managed.next_probe = WorkQueue::Clock::now() + options_.readiness_delay;
  LogInfo("{} {}: pod {} started at {}:{} on {}", owner_kind_, key, name, ip, port, node);
  return &(pods[name] = std::move(managed));
}

void PodLifecycle::TerminatePod(ManagedPod& pod) {
  if (pod.finished()) {
    // Nothing runs; the runtime still holds the pod's directory and logs, which StopPod frees.
    BeginStop(pod, std::chrono::milliseconds(0));
    return;
  }
  if (pod.phase == PodPhase::kPending) {
    // Nothing runs: the object goes at once, as the kubelet confirms a pod with no containers.
    pod.phase = PodPhase::kStopping;
    pod.stopped = std::make_shared<std::atomic<bool>>(true);
    queue_.Add(pod.owner_key);
    return;
  }
  // A pod whose process drains itself on SIGTERM gets its own grace period, and StopPod waits
  // for it; a backend pod keeps serving through the sandbox's grace period, then is stopped.
  bool drains_itself = runtime_.DrainsItself(pod.name);
  auto grace = drains_itself ? pod.termination_grace : options_.grace_period;
  // What the API server does on DELETE with a grace period: the object stays, marked.
  auto grace_seconds = static_cast<int64_t>(std::ceil(grace.count() / 1000.0));
  auto status = MutateObject(store_, "pods", pod.ns, pod.name, [&](json& object) {
    object["metadata"]["deletionTimestamp"] = NowRfc3339();
    object["metadata"]["deletionGracePeriodSeconds"] = grace_seconds;
    return true;
  });
  if (!status.ok() && status.code() != absl::StatusCode::kNotFound) {
    LogWarn("{} controller: cannot mark pod {}/{} terminating: {}", owner_kind_, pod.ns, pod.name,
            std::string(status.message()));
  }
  auto object = store_.Get("pods", pod.ns, pod.name);
  if (object.ok()) {
    for (const auto& container : ContainerNames(object->value("spec", json::object()))) {
      Event(pod, kEventNormal, "Killing", "Stopping container " + container,
            "spec.containers{" + container + "}");
    }
  }
  runtime_.BeginTermination(pod.name);
  LogInfo("pod {}/{} terminating ({} ms grace{})", pod.ns, pod.name, grace.count(),
          drains_itself ? ", drained by the pod itself" : "");
  if (drains_itself) {
    BeginStop(pod, grace);
    return;
  }
  pod.phase = PodPhase::kTerminating;
  pod.stop_at = WorkQueue::Clock::now() + grace;
}

void PodLifecycle::BeginStop(ManagedPod& pod, std::chrono::milliseconds deadline) {
  pod.phase = PodPhase::kStopping;
  pod.stopped = std::make_shared<std::atomic<bool>>(false);
  // Shutdown blocks until in-flight calls finish; other pods must not wait for it.
  pod.stopper = std::make_shared<std::thread>(
      [this, key = pod.owner_key, name = pod.name, stopped = pod.stopped, deadline] {
        runtime_.StopPod(name, deadline);
        stopped->store(true);
        queue_.Add(key);
      });
}

std::optional<WorkQueue::Clock::time_point> PodLifecycle::NextDue(const PodMap& pods) const {
  std::optional<WorkQueue::Clock::time_point> next;
  for (const auto& [pod_name, pod] : pods) {
    std::optional<WorkQueue::Clock::time_point> due;
    if (pod.phase == PodPhase::kStarting) due = pod.next_probe;
    if (pod.phase == PodPhase::kTerminating) due = pod.stop_at;
    if (due && (!next || *due < *next)) next = due;
  }
  return next;
}

void PodLifecycle::JoinStoppers() {
  for (auto& [key, pods] : pods_) {
    for (auto& [name, pod] : pods) {
      if (pod.stopper && pod.stopper->joinable()) pod.stopper->join();
    }
  }
}

void PodLifecycle::Event(const ManagedPod& pod, const std::string& type, const std::string& reason,
                         const std::string& message, const std::string& field_path,
                         const std::string& component) {
  json involved = {{"kind", "Pod"},
                   {"apiVersion", "v1"},
                   {"metadata", {{"namespace", pod.ns}, {"name", pod.name}, {"uid", pod.uid}}}};
  RecordEvent(store_, {component, component == "kubelet" ? pod.node : ""}, involved, type, reason,
              message, field_path);
}

}  // namespace podlb::sandbox
