#include "sandbox/controllers/daemonset_controller.h"

#include <algorithm>
#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "sandbox/controllers/event_recorder.h"

namespace podlb::sandbox {

using json = nlohmann::json;

absl::StatusOr<int> MaxUnavailable(const json& daemonset, int desired) {
  const json* value = &daemonset;
  for (const char* key : {"spec", "updateStrategy", "rollingUpdate", "maxUnavailable"}) {
    if (!value->is_object() || !value->contains(key)) return 1;
    value = &(*value)[key];
  }
  if (value->is_null()) return 1;
  if (value->is_number_integer()) {
    int64_t n = value->get<int64_t>();
    if (n < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("spec.updateStrategy.rollingUpdate.maxUnavailable: ", n,
                       " must be greater than or equal to 0"));
    }
    return static_cast<int>(std::max<int64_t>(1, n));
  }
  std::string text = value->is_string() ? value->get<std::string>() : value->dump();
  int percent = 0;
  if (!value->is_string() || !text.ends_with("%") ||
      !absl::SimpleAtoi(text.substr(0, text.size() - 1), &percent) || percent < 0 ||
      percent > 100) {
    return absl::InvalidArgumentError(
        absl::StrCat("spec.updateStrategy.rollingUpdate.maxUnavailable: \"", text,
                     "\" must be an integer or a percentage between 0% and 100%"));
  }
  return std::max(1, (desired * percent + 99) / 100);
}

DaemonSetController::DaemonSetController(ResourceStore& store, PodRuntime& runtime,
                                         PodIpAllocator& ips, DaemonSetControllerOptions options)
    : store_(store),
      options_(std::move(options)),
      lifecycle_(store, runtime, ips, queue_, "DaemonSet", options_) {}

DaemonSetController::~DaemonSetController() { Stop(); }

absl::Status DaemonSetController::Start() {
  if (options_.nodes.empty()) return absl::InvalidArgumentError("daemonset controller: no nodes");
  daemonset_watch_ = std::make_unique<StoreWatch>(
      store_, "daemonsets",
      [this](const WatchEvent& event) { queue_.Add(ObjectKey(event.object)); });
  pod_watch_ = std::make_unique<StoreWatch>(
      store_, "pods", [this](const WatchEvent& event) { lifecycle_.OnPodEvent(event); });
  daemonset_watch_->Start();
  pod_watch_->Start();
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void DaemonSetController::Stop() {
  if (daemonset_watch_) daemonset_watch_->Stop();
  if (pod_watch_) pod_watch_->Stop();
  queue_.ShutDown();
  if (thread_.joinable()) thread_.join();
  lifecycle_.JoinStoppers();
}

void DaemonSetController::Run() {
  while (auto key = queue_.Get()) {
    try {
      lifecycle_.Reconcile(
          "daemonsets", *key,
          [this](const json& daemonset, PodMap& pods) { return ManageNodes(daemonset, pods); },
          [this](const json& daemonset, const PodMap& pods) { UpdateStatus(daemonset, pods); });
    } catch (const std::exception& e) {
      // Malformed objects are bad input, not a reason to stop the controller.
      LogError("daemonset controller: cannot reconcile {}: {}", *key, e.what());
    }
  }
}

std::vector<const NodeInfo*> DaemonSetController::EligibleNodes(const json& daemonset) const {
  json selector = daemonset.value("spec", json::object())
                      .value("template", json::object())
                      .value("spec", json::object())
                      .value("nodeSelector", json::object());
  std::vector<const NodeInfo*> eligible;
  for (const NodeInfo& node : options_.nodes) {
    auto labels = NodeLabels(node);
    bool matches = true;
    if (selector.is_object()) {
      for (const auto& [label, value] : selector.items()) {
        auto it = labels.find(label);
        matches = matches && value.is_string() && it != labels.end() &&
                  it->second == value.get<std::string>();
      }
    }
    if (matches) eligible.push_back(&node);
  }
  return eligible;
}

bool DaemonSetController::ManageNodes(const json& daemonset, PodMap& pods) {
  const json& spec = daemonset.value("spec", json::object());
  const json& meta = daemonset["metadata"];
  std::string hash = TemplateHash(spec.value("template", json::object()));
  std::vector<const NodeInfo*> eligible = EligibleNodes(daemonset);
  std::set<std::string> eligible_names;
  for (const NodeInfo* node : eligible) eligible_names.insert(node->name);

  bool changed = false;
  auto terminate = [&](ManagedPod* pod) {
    Event(daemonset, kEventNormal, "SuccessfulDelete", "Deleted pod: " + pod->name);
    lifecycle_.TerminatePod(*pod);
    changed = true;
  };
  std::map<std::string, std::vector<ManagedPod*>> live_by_node;
  std::set<std::string> leaving_nodes;  // nodes with a pod terminating or stopping
  for (auto& [pod_name, pod] : pods) {
    if (!pod.live()) {
      leaving_nodes.insert(pod.node);
    } else if (!eligible_names.count(pod.node)) {
      terminate(&pod);  // misscheduled: the node no longer matches the nodeSelector
    } else {
      live_by_node[pod.node].push_back(&pod);
    }
  }

  std::string type =
      spec.value("updateStrategy", json::object()).value("type", std::string("RollingUpdate"));
  auto max_unavailable = MaxUnavailable(daemonset, static_cast<int>(eligible.size()));
  if (!max_unavailable.ok()) {
    // The API server should have refused it; keep rolling one node at a time meanwhile.
    strategy_errors_.Log(absl::StrCat("daemonset ", ObjectKey(daemonset), ": ",
                                      std::string(max_unavailable.status().message()),
                                      "; rolling one node at a time"));
    max_unavailable = 1;
  } else {
    strategy_errors_.Clear();
  }

  int unavailable = 0;
  std::vector<ManagedPod*> kept;  // one per eligible node that has a live pod
  const std::string prefix = meta.value("name", "") + "-";
  json extra_labels = {
      {"controller-revision-hash", hash},
      {"pod-template-generation", std::to_string(meta.value("generation", int64_t{1}))}};
  for (const NodeInfo* node : eligible) {
    auto& live = live_by_node[node->name];
    if (live.empty()) {
      ++unavailable;
      // maxSurge 0: the new pod waits until the old one on this node is gone.
      if (leaving_nodes.count(node->name)) continue;
      // Not created: CreatePod logged why and queued the DaemonSet again after a back-off (a
      // change reported here would run it again at once).
      if (ManagedPod* pod =
              lifecycle_.CreatePod(daemonset, prefix, hash, extra_labels, node->name, pods)) {
        Event(daemonset, kEventNormal, "SuccessfulCreate", "Created pod: " + pod->name);
        changed = true;
      }
      continue;
    }
    // More than one pod on a node (one was replaced while another was created): keep the one of
    // the current template, ready, oldest.
    std::sort(live.begin(), live.end(), [&](ManagedPod* a, ManagedPod* b) {
      bool a_current = a->template_hash == hash, b_current = b->template_hash == hash;
      if (a_current != b_current) return a_current;
      bool a_ready = a->phase == PodPhase::kReady, b_ready = b->phase == PodPhase::kReady;
      if (a_ready != b_ready) return a_ready;
      return a->seq < b->seq;
    });
    for (size_t i = 1; i < live.size(); ++i) terminate(live[i]);
    if (live[0]->phase != PodPhase::kReady) ++unavailable;
    kept.push_back(live[0]);
  }
  if (type != "RollingUpdate") return changed;  // OnDelete: old pods stay until deleted
  for (ManagedPod* pod : kept) {
    if (pod->template_hash == hash) continue;
    if (pod->phase != PodPhase::kReady) {
      terminate(pod);  // unavailable already: replacing it costs nothing
    } else if (unavailable < *max_unavailable) {
      terminate(pod);
      ++unavailable;
    }
  }
  return changed;
}

void DaemonSetController::UpdateStatus(const json& daemonset, const PodMap& pods) {
  std::string hash =
      TemplateHash(daemonset.value("spec", json::object()).value("template", json::object()));
  std::set<std::string> eligible;
  for (const NodeInfo* node : EligibleNodes(daemonset)) eligible.insert(node->name);
  std::set<std::string> scheduled, misscheduled, ready, updated;
  for (const auto& [pod_name, pod] : pods) {
    if (!pod.live()) continue;
    if (!eligible.count(pod.node)) {
      misscheduled.insert(pod.node);
      continue;
    }
    scheduled.insert(pod.node);
    if (pod.phase == PodPhase::kReady) ready.insert(pod.node);
    if (pod.template_hash == hash) updated.insert(pod.node);
  }
  const json& meta = daemonset["metadata"];
  int desired = static_cast<int>(eligible.size());
  int available = static_cast<int>(ready.size());  // minReadySeconds 0
  json status = {{"desiredNumberScheduled", desired},
                 {"currentNumberScheduled", static_cast<int>(scheduled.size())},
                 {"numberMisscheduled", static_cast<int>(misscheduled.size())},
                 {"numberReady", available},
                 {"numberAvailable", available},
                 {"numberUnavailable", std::max(0, desired - available)},
                 {"updatedNumberScheduled", static_cast<int>(updated.size())},
                 {"observedGeneration", meta.value("generation", int64_t{0})}};
  auto result = MutateObject(store_, "daemonsets", meta.value("namespace", "default"),
                             meta.value("name", ""), [&](json& object) {
                               if (object.value("status", json()) == status) return false;
                               object["status"] = status;
                               return true;
                             });
  if (!result.ok() && result.code() != absl::StatusCode::kNotFound) {
    LogWarn("daemonset controller: cannot update status of {}: {}", ObjectKey(daemonset),
            std::string(result.message()));
  }
}

void DaemonSetController::Event(const json& daemonset, const std::string& type,
                                const std::string& reason, const std::string& message) {
  RecordEvent(store_, {"daemonset-controller", ""}, daemonset, type, reason, message);
}

}  // namespace podlb::sandbox
