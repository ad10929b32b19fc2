// Events as the kubelet, the scheduler and the workload controllers record them: core/v1 Event
// objects about an involved object (a Pod, a DaemonSet), so `kubectl describe` and
// `kubectl get events` show them. The same reason and message about the same object again
// bump count and lastTimestamp of one Event, as client-go's EventCorrelator does.
// Stateless apart from the store; any thread.
#pragma once

#include <string>

#include "nlohmann/json.hpp"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

struct EventSource {
  std::string component;  // "kubelet", "default-scheduler", "daemonset-controller"
  std::string host;       // the node, for the kubelet
};

inline constexpr char kEventNormal[] = "Normal";
inline constexpr char kEventWarning[] = "Warning";

// Records (or bumps) an Event about `involved` (a stored object: kind, metadata.name,
// namespace, uid). `field_path` narrows it to a part, e.g. "spec.containers{proxy}". Failing to
// record an event is logged, never an error for the caller: events are best effort, as in
// Kubernetes.
void RecordEvent(ResourceStore& store, const EventSource& source, const nlohmann::json& involved,
                 const std::string& type, const std::string& reason, const std::string& message,
                 const std::string& field_path = "");

}  // namespace podlb::sandbox
