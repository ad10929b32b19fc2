#include "sandbox/controllers/job_controller.h"

#include <algorithm>
#include <optional>

#include "absl/strings/str_cat.h"
#include "core/logging.h"
#include "sandbox/apiserver/json_path.h"
#include "sandbox/controllers/event_recorder.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

// The messages kube-controller-manager's job controller writes.
constexpr char kBackoffLimitMessage[] = "Job has reached the specified backoff limit";
constexpr char kDeadlineMessage[] = "Job was active longer than specified deadline";
constexpr char kCompletionsMessage[] = "Reached expected number of completions";

bool HasTrueCondition(const json& status, const std::string& type) {
  const json& conditions = At(status, {"conditions"});
  if (!conditions.is_array()) return false;
  for (const auto& c : conditions) {
    if (At(c, {"type"}) == type && At(c, {"status"}) == "True") return true;
  }
  return false;
}

void AddCondition(json& status, const std::string& type, const std::string& reason,
                  const std::string& message) {
  std::string now = NowRfc3339();
  json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  conditions.push_back({{"type", type},
                        {"status", "True"},
                        {"reason", reason},
                        {"message", message},
                        {"lastProbeTime", now},
                        {"lastTransitionTime", now}});
}

int64_t IntOr(const json& value, int64_t fallback) {
  return value.is_number_integer() ? value.get<int64_t>() : fallback;
}

// A count in a Job's status: omitted when zero, as the real server's omitempty fields are.
void SetCount(json& status, const char* field, int64_t value) {
  if (value > 0) {
    status[field] = value;
  } else {
    status.erase(field);
  }
}

// The Job that controls a pod ("ns/name"), from its ownerReferences, or "".
std::string ControllingJob(const json& pod) {
  const json& meta = At(pod, {"metadata"});
  const json& owners = At(meta, {"ownerReferences"});
  if (!owners.is_array()) return "";
  for (const auto& owner : owners) {
    if (At(owner, {"kind"}) == "Job" && At(owner, {"controller"}) == true) {
      return absl::StrCat(meta.value("namespace", ""), "/", owner.value("name", ""));
    }
  }
  return "";
}

}  // namespace

JobController::JobController(ResourceStore& store, PodRuntime& runtime, PodIpAllocator& ips,
                             JobControllerOptions options)
    : store_(store),
      options_(std::move(options)),
      lifecycle_(store, runtime, ips, queue_, "Job", options_, "batch/v1") {}

JobController::~JobController() { Stop(); }

absl::Status JobController::Start() {
  if (options_.nodes.empty()) return absl::InvalidArgumentError("job controller: no nodes");
  job_watch_ = std::make_unique<StoreWatch>(
      store_, "jobs", [this](const WatchEvent& event) { queue_.Add(ObjectKey(event.object)); });
  pod_watch_ = std::make_unique<StoreWatch>(store_, "pods", [this](const WatchEvent& event) {
    lifecycle_.OnPodEvent(event);
    // A pod's status moved (finished, restarted): its Job counts again.
    if (std::string job = ControllingJob(event.object); !job.empty()) queue_.Add(job);
  });
  job_watch_->Start();
  pod_watch_->Start();
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void JobController::Stop() {
  if (job_watch_) job_watch_->Stop();
  if (pod_watch_) pod_watch_->Stop();
  queue_.ShutDown();
  if (thread_.joinable()) thread_.join();
  lifecycle_.JoinStoppers();
}

void JobController::Run() {
  while (auto key = queue_.Get()) {
    try {
      lifecycle_.Reconcile(
          "jobs", *key, [this](const json& job, PodMap& pods) { return Sync(job, pods); },
          [](const json&, const PodMap&) {});
      auto [ns, name] = SplitObjectKey(*key);
      if (!store_.Get("jobs", ns, name).ok()) jobs_.erase(*key);
    } catch (const std::exception& e) {
      // Malformed objects are bad input, not a reason to stop the controller.
      LogError("job controller: cannot reconcile {}: {}", *key, e.what());
    }
  }
}

bool JobController::Sync(const json& job, PodMap& pods) {
  const std::string key = ObjectKey(job);
  const json& meta = job["metadata"];
  const std::string ns = meta.value("namespace", "default");
  const std::string name = meta.value("name", "");
  const json& spec = At(job, {"spec"});
  const json old_status = At(job, {"status"}).is_object() ? job["status"] : json::object();
  json status = old_status;
  auto now = WorkQueue::Clock::now();
  JobState& state = jobs_[key];
  bool changed = false;
  auto terminate_live = [&] {
    for (auto& [pod_name, pod] : pods) {
      if (!pod.live()) continue;
      lifecycle_.TerminatePod(pod);
      changed = true;
    }
  };

  // Count the pods: finished ones once each (they stay counted after they are deleted).
  int64_t active = 0, ready = 0, terminating = 0, restarts = 0;
  int64_t succeeded = IntOr(At(old_status, {"succeeded"}), 0);
  int64_t failed = IntOr(At(old_status, {"failed"}), 0);
  std::vector<std::string> newly_counted;
  for (const auto& [pod_name, pod] : pods) {
    if (pod.live()) {
      ++active;
      if (pod.phase == PodPhase::kReady) ++ready;
      // restartPolicy OnFailure: the kubelet restarts failed containers in place.
      auto object = store_.Get("pods", pod.ns, pod_name);
      const json& containers = object.ok() ? At(*object, {"status", "containerStatuses"}) : json();
      for (size_t i = 0; containers.is_array() && i < containers.size(); ++i) {
        restarts += IntOr(At(containers[i], {"restartCount"}), 0);
      }
    } else if (pod.phase == PodPhase::kTerminating || pod.phase == PodPhase::kStopping) {
      ++terminating;
    }
    if (pod.finished() && !state.counted.contains(pod_name)) {
      newly_counted.push_back(pod_name);
      (pod.phase == PodPhase::kSucceeded ? succeeded : failed) += 1;
    }
  }

  const bool was_finished =
      HasTrueCondition(old_status, "Complete") || HasTrueCondition(old_status, "Failed");
  if (!was_finished) {
    const std::string restart_policy =
        At(spec, {"template", "spec", "restartPolicy"}).is_string()
            ? spec["template"]["spec"]["restartPolicy"].get<std::string>()
            : "Never";
    const int64_t backoff_limit = IntOr(At(spec, {"backoffLimit"}), 6);
    const int64_t parallelism = std::max<int64_t>(0, IntOr(At(spec, {"parallelism"}), 1));
    const json& completions = At(spec, {"completions"});
    const json& deadline = At(spec, {"activeDeadlineSeconds"});
    const bool suspended = At(spec, {"suspend"}) == true;
    // The real controller's pastBackoffLimitOnFailure: restarts of running pods count.
    bool past_backoff =
        failed > backoff_limit || (restart_policy == "OnFailure" &&
                                   (backoff_limit == 0 ? restarts > 0 : restarts >= backoff_limit));
    bool past_deadline = deadline.is_number_integer() && status.contains("startTime") &&
                         now - state.started >= std::chrono::seconds(deadline.get<int64_t>());
    bool complete = completions.is_number_integer()
                        ? succeeded >= completions.get<int64_t>()
                        : succeeded > 0 && active == 0;  // a work queue: one success, all done
    if (past_backoff || past_deadline) {
      const char* reason = past_backoff ? "BackoffLimitExceeded" : "DeadlineExceeded";
      const char* message = past_backoff ? kBackoffLimitMessage : kDeadlineMessage;
      terminate_live();
      AddCondition(status, "FailureTarget", reason, message);
      AddCondition(status, "Failed", reason, message);
      Event(job, kEventWarning, reason, message);
      LogInfo("job controller: job {} failed: {}", key, message);
      state.finished = now;
    } else if (complete) {
      terminate_live();
      AddCondition(status, "SuccessCriteriaMet", "CompletionsReached", kCompletionsMessage);
      AddCondition(status, "Complete", "CompletionsReached", kCompletionsMessage);
      status["completionTime"] = NowRfc3339();
      Event(job, kEventNormal, "Completed", "Job completed");
      LogInfo("job controller: job {} completed", key);
      state.finished = now;
    } else if (suspended) {
      terminate_live();
      if (!HasTrueCondition(status, "Suspended")) {
        AddCondition(status, "Suspended", "JobSuspended", "Job suspended");
        Event(job, kEventNormal, "Suspended", "Job suspended");
      }
    } else {
      if (HasTrueCondition(status, "Suspended")) {
        json& conditions = status["conditions"];
        for (auto& c : conditions) {
          if (At(c, {"type"}) != "Suspended") continue;
          c["status"] = "False";
          c["reason"] = "JobResumed";
          c["message"] = "Job resumed";
          c["lastTransitionTime"] = NowRfc3339();
        }
        Event(job, kEventNormal, "Resumed", "Job resumed");
      }
      if (!status.contains("startTime")) {
        status["startTime"] = NowRfc3339();
        state.started = now;
      }
      int64_t wanted = parallelism;
      if (completions.is_number_integer()) {
        wanted = std::min(wanted, completions.get<int64_t>() - succeeded);
      } else if (succeeded > 0) {
        wanted = 0;  // a work queue with a success: the running pods finish, no new ones
      }
      wanted = std::max<int64_t>(0, wanted);
      // Too many (parallelism lowered): the newest go first.
      std::vector<ManagedPod*> live;
      for (auto& [pod_name, pod] : pods) {
        if (pod.live()) live.push_back(&pod);
      }
      std::sort(live.begin(), live.end(),
                [](ManagedPod* a, ManagedPod* b) { return a->seq > b->seq; });
      for (int64_t i = 0; i < active - wanted; ++i) {
        lifecycle_.TerminatePod(*live[i]);
        Event(job, kEventNormal, "SuccessfulDelete", "Deleted pod: " + live[i]->name);
        changed = true;
      }
      for (int64_t i = active; i < wanted; ++i) {
        const NodeInfo& node = options_.nodes[next_node_++ % options_.nodes.size()];
        std::string hash = TemplateHash(At(spec, {"template"}));
        ManagedPod* pod =
            lifecycle_.CreatePod(job, name + "-", hash, json::object(), node.name, pods);
        // Not created: CreatePod logged why and queued the Job again after a back-off.
        if (pod == nullptr) break;
        Event(job, kEventNormal, "SuccessfulCreate", "Created pod: " + pod->name);
        changed = true;
      }
      if (deadline.is_number_integer()) {
        queue_.AddAt(key, state.started + std::chrono::seconds(deadline.get<int64_t>()));
      }
    }
  } else if (!state.finished) {
    state.finished = now;  // finished before this controller saw it
  }

  // Recount what runs now that pods may have been created or deleted.
  active = ready = terminating = 0;
  for (const auto& [pod_name, pod] : pods) {
    if (pod.live()) ++active;
    if (pod.phase == PodPhase::kReady) ++ready;
    if (pod.phase == PodPhase::kTerminating || pod.phase == PodPhase::kStopping) ++terminating;
  }
  SetCount(status, "active", active);
  SetCount(status, "succeeded", succeeded);
  SetCount(status, "failed", failed);
  status["ready"] = ready;
  status["terminating"] = terminating;
  if (status != old_status) {
    absl::Status written = MutateObject(store_, "jobs", ns, name, [&](json& object) {
      if (object.value("status", json()) == status) return false;
      object["status"] = status;
      return true;
    });
    if (!written.ok()) {
      if (written.code() != absl::StatusCode::kNotFound) {
        LogWarn("job controller: cannot update status of {}: {}", key,
                std::string(written.message()));
      }
      queue_.AddAfter(key, std::chrono::seconds(1));
      return changed;
    }
  }
  state.counted.insert(newly_counted.begin(), newly_counted.end());

  // The TTL-after-finished controller.
  const json& ttl = At(spec, {"ttlSecondsAfterFinished"});
  if (state.finished && ttl.is_number_integer()) {
    auto due = *state.finished + std::chrono::seconds(ttl.get<int64_t>());
    if (now >= due) {
      LogInfo("job controller: job {} finished {} s ago; deleting it (ttlSecondsAfterFinished)",
              key, ttl.get<int64_t>());
      auto deleted = store_.Delete("jobs", ns, name);
      if (!deleted.ok() && deleted.status().code() != absl::StatusCode::kNotFound) {
        LogWarn("job controller: cannot delete {}: {}", key,
                std::string(deleted.status().message()));
      }
      changed = true;  // the next round sees the Job gone and deletes its pods
    } else {
      queue_.AddAt(key, due);
    }
  }
  return changed;
}

void JobController::Event(const json& job, const std::string& type, const std::string& reason,
                          const std::string& message) {
  const json& meta = job["metadata"];
  json involved = {{"kind", "Job"},
                   {"apiVersion", "batch/v1"},
                   {"metadata",
                    {{"namespace", meta.value("namespace", "")},
                     {"name", meta.value("name", "")},
                     {"uid", meta.value("uid", "")}}}};
  RecordEvent(store_, {"job-controller", ""}, involved, type, reason, message);
}

}  // namespace podlb::sandbox
