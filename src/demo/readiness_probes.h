// Readiness probes for the helpers the demo starts beside the cluster: each asks a real
// question and requires a real answer, so "started" never stands in for "serving". Called from
// the control thread that starts the helper; each blocks until its answer or its timeout.
#pragma once

#include <chrono>
#include <string>

#include "absl/status/status.h"
#include "process/child_process.h"

namespace podlb::demo {

// Opens a TCP connection to `address` ("ip:port"), sends the HTTP/2 client preface and requires
// an HTTP/2 SETTINGS frame back: through the ClusterIP forwarder that answer can only come from
// a backend pod.
absl::Status ExpectHttp2Server(const std::string& address, std::chrono::milliseconds timeout);

// Asks GET /readyz on `admin_address` until it answers 200, for a podlb component `what` run as
// `child`. Fails at once if the child exits, and with the last answer when `timeout` passes.
absl::Status WaitForReadyz(ChildProcess& child, const std::string& what,
                           const std::string& admin_address, std::chrono::milliseconds timeout);

}  // namespace podlb::demo
