// `podlb test-server`: one backend pod as the sandbox runs it (grpc.testing.TestService,
// grpc.health.v1.Health, server reflection), as a process of its own: the backend of the demo on
// a real cluster (issue 13, item 5), run from the podlb-demo image. Flag parsing and wiring only;
// the server is src/sandbox/pods/backend_pod.
#include <cstdio>
#include <thread>

#include "absl/strings/numbers.h"
#include "cli/commands.h"
#include "cli/signals.h"
#include "core/logging.h"
#include "core/pod_identity.h"
#include "sandbox/pods/backend_pod.h"

namespace podlb::cli {
namespace {

struct TestServerFlags {
  std::string listen = "0.0.0.0:50051";
  std::string name;
  double drain_s = 2;
  double max_connection_age_s = 0;
};

int RunTestServer(const TestServerFlags& flags) {
  auto colon = flags.listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(flags.listen.substr(colon + 1), &port) || port < 0 || port > 65535) {
    LogError("podlb test-server: --listen must be HOST:PORT (port 0 picks one), got \"{}\"",
             flags.listen);
    return 2;
  }
  if (flags.drain_s < 0 || flags.max_connection_age_s < 0) {
    LogError("podlb test-server: --drain and --max-connection-age must be >= 0");
    return 2;
  }
  sandbox::BackendPodOptions options;
  options.name = flags.name.empty() ? PodNameOrHostname("test-server") : flags.name;
  options.ip = flags.listen.substr(0, colon);
  options.port = static_cast<uint16_t>(port);
  if (flags.max_connection_age_s > 0) {
    options.max_connection_age =
        std::chrono::milliseconds(static_cast<int64_t>(flags.max_connection_age_s * 1000));
  }
  sandbox::BackendPod pod(options);
  if (auto status = pod.Start(); !status.ok()) {
    LogError("podlb test-server: {}", std::string(status.message()));
    return 1;
  }
  // One line on stdout, for scripts and tests that wait for readiness and need the port.
  std::printf("podlb test-server: %s serving on %s\n", pod.name().c_str(), pod.address().c_str());
  std::fflush(stdout);

  int signal = WaitForTerminationSignal();
  // As a pod that Kubernetes deletes: health turns NOT_SERVING at once while calls are still
  // served for --drain (the endpoints controllers and clients need that long to stop sending),
  // then GOAWAY, and in-flight calls get one more second.
  LogInfo("test-server: signal {}, draining for {}s", signal, flags.drain_s);
  pod.BeginTermination();
  std::this_thread::sleep_for(
      std::chrono::milliseconds(static_cast<int64_t>(flags.drain_s * 1000)));
  pod.Shutdown(std::chrono::seconds(1));
  return 0;
}

}  // namespace

void AddTestServerCommand(CLI::App& app, CommandTable& table) {
  auto flags = std::make_shared<TestServerFlags>();
  auto* sub = app.add_subcommand("test-server",
                                 "A backend pod: grpc.testing.TestService + grpc.health.v1 (the "
                                 "demo's backends on a cluster)");
  sub->add_option("--listen", flags->listen, "HOST:PORT (port 0 picks one)")->capture_default_str();
  sub->add_option("--name", flags->name,
                  "returned in SimpleResponse.hostname and server_id (default: $POD_NAME, else "
                  "the hostname, which is the pod's name in Kubernetes)");
  sub->add_option("--drain", flags->drain_s,
                  "seconds calls are still served after SIGTERM, with health NOT_SERVING")
      ->capture_default_str();
  sub->add_option("--max-connection-age", flags->max_connection_age_s,
                  "seconds before the server sends GOAWAY on a connection (0: never)")
      ->capture_default_str();
  table.push_back({sub, [flags] { return RunTestServer(*flags); }});
}

}  // namespace podlb::cli
