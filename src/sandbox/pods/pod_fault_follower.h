// PodFaultFollower: keeps a backend's PodFault equal to what its own Pod object's podlb.io/fault-*
// annotations say, for a `podlb test-server` process that follows its Pod through the API (the
// sandbox's in-process pods get theirs from the sandbox's kubelet instead). Feed it every state
// of the Pod an ObjectWatch reports; annotations it cannot parse are logged (key, value, what
// would be accepted) and the last good fault stays. Not thread-safe: call from one thread (the
// watch's).
#pragma once

#include <functional>
#include <string>

#include "core/logging.h"
#include "nlohmann/json.hpp"
#include "sandbox/pods/pod_fault.h"

namespace podlb::sandbox {

class PodFaultFollower {
 public:
  using SetFault = std::function<void(const PodFault&)>;

  // `pod` is "namespace/name", for the log; `set_fault` applies a new fault (BackendPod::SetFault)
  // and is called only when the fault changes.
  PodFaultFollower(std::string pod, PodFault initial, SetFault set_fault);

  // The Pod object (JSON) as the API server described it, or null when it does not exist: then
  // the fault stays as it is (a pod being deleted keeps misbehaving until it is gone, as in the
  // sandbox).
  void OnPod(const nlohmann::json* pod);

  const PodFault& fault() const { return fault_; }

 private:
  const std::string pod_;
  const SetFault set_fault_;
  PodFault fault_;
  bool applied_ = false;  // a fault was read from the Pod at least once
  LogOnChange bad_annotations_log_{LogLevel::kWarn};
  LogOnChange missing_log_{LogLevel::kWarn};
};

}  // namespace podlb::sandbox
