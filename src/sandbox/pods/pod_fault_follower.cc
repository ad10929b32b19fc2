#include "sandbox/pods/pod_fault_follower.h"

namespace podlb::sandbox {

PodFaultFollower::PodFaultFollower(std::string pod, PodFault initial, SetFault set_fault)
    : pod_(std::move(pod)), set_fault_(std::move(set_fault)), fault_(initial) {}

void PodFaultFollower::OnPod(const nlohmann::json* pod) {
  if (pod == nullptr) {
    missing_log_.Log("pod " + pod_ + ": not found; keeping fault " + fault_.ToString() +
                     " until it exists");
    return;
  }
  missing_log_.Clear("pod " + pod_ + ": found");
  const bool has_meta = pod->is_object() && pod->contains("metadata");
  auto fault = ParsePodFault(AnnotationsOf(has_meta ? pod->at("metadata") : nlohmann::json()));
  if (!fault.ok()) {
    // A real API server stores any string (only the sandbox's validates them): the operator's
    // typo must not take the last good fault away, nor crash the backend.
    bad_annotations_log_.Log("pod " + pod_ + ": ignoring its fault annotations: " +
                             std::string(fault.status().message()) + "; keeping fault " +
                             fault_.ToString());
    return;
  }
  bad_annotations_log_.Clear("pod " + pod_ + ": fault annotations valid again");
  // The first read is logged (the follow works); changes are logged by whoever applies them
  // (BackendPod::SetFault), once.
  if (!applied_) LogInfo("pod {}: fault annotations read: fault {}", pod_, fault->ToString());
  if (applied_ && *fault == fault_) return;
  applied_ = true;
  fault_ = *fault;
  set_fault_(fault_);
}

}  // namespace podlb::sandbox
