// RunProbe: one readiness or liveness probe of a pod, as the kubelet runs it: an HTTP GET to the
// pod's IP (success: a status from 200 to 399) or a TCP connect, each within the probe's timeout.
// Blocking; the sandbox's kubelet runs probes on its own thread.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "sandbox/pods/container_plan.h"

namespace podlb::sandbox {

// OK when the probe succeeds; otherwise what the kubelet would put in its event ("Get
// \"http://127.0.0.5:18001/readyz\": connection refused", "HTTP probe failed with statuscode: 503").
absl::Status RunProbe(const ProbeSpec& probe, const std::string& pod_ip);

}  // namespace podlb::sandbox
