// `podlb test-server`: one backend pod as the sandbox runs it (grpc.testing.TestService,
// grpc.health.v1.Health, server reflection), as a process of its own: the backend of the demo on
// a real cluster (issue 13, item 5), run from the podlb-demo image. Flag parsing and wiring only;
// the server is src/sandbox/pods/backend_pod.
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "absl/strings/numbers.h"
#include "cli/commands.h"
#include "cli/signals.h"
#include "cli/source_flags.h"
#include "core/logging.h"
#include "core/pod_identity.h"
#include "discovery/kubernetes/object_watch.h"
#include "sandbox/pods/backend_pod.h"
#include "sandbox/pods/pod_fault_follower.h"

namespace podlb::cli {
namespace {

struct TestServerFlags {
  std::string listen = "0.0.0.0:50051";
  std::string name;
  double drain_s = 2;
  double max_connection_age_s = 0;
  bool faults_from_pod = false;
  std::string pod_namespace;  // default: $POD_NAMESPACE, else the credentials' namespace
  std::string kubeconfig;
  std::string context;
};

std::string EnvOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? value : fallback;
}

// --faults-from-pod: a watch on the server's own Pod whose fault annotations become the
// server's fault. Null (with a logged reason) when it cannot be set up at all; API failures
// later are retried by the watch while the server keeps serving.
std::unique_ptr<ObjectWatch> FollowOwnPod(const TestServerFlags& flags, sandbox::BackendPod& pod,
                                          std::unique_ptr<sandbox::PodFaultFollower>* follower) {
  auto config = LoadClusterConfig(flags.kubeconfig, flags.context);
  if (!config.ok()) {
    LogError("podlb test-server: --faults-from-pod: {}{}", std::string(config.status().message()),
             absl::IsNotFound(config.status()) ? "; pass --kubeconfig FILE" : "");
    return nullptr;
  }
  ObjectWatchOptions options;
  options.name = pod.name();
  options.ns = flags.pod_namespace.empty() ? EnvOr("POD_NAMESPACE", config->default_namespace)
                                           : flags.pod_namespace;
  if (options.ns.empty()) options.ns = "default";  // as kubectl, for a context without one
  *follower = std::make_unique<sandbox::PodFaultFollower>(
      options.ns + "/" + options.name, pod.fault(),
      [&pod](const sandbox::PodFault& fault) { pod.SetFault(fault); });
  auto watch = std::make_unique<ObjectWatch>(
      *std::move(config), options,
      [f = follower->get()](const nlohmann::json* object) { f->OnPod(object); });
  if (auto status = watch->Start(); !status.ok()) {
    LogError("podlb test-server: --faults-from-pod: {}", std::string(status.message()));
    return nullptr;
  }
  LogInfo("test-server: following the podlb.io/fault-* annotations of pod {}/{}", options.ns,
          options.name);
  return watch;
}

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
  // Before serving, so a bad configuration exits before anything waits for the port, and the
  // Pod's fault is usually in place before the first call.
  std::unique_ptr<sandbox::PodFaultFollower> follower;
  std::unique_ptr<ObjectWatch> watch;
  if (flags.faults_from_pod) {
    watch = FollowOwnPod(flags, pod, &follower);
    if (watch == nullptr) return 2;
  }
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
  if (watch != nullptr) watch->Stop();  // a fault changed while draining no longer matters
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
  sub->add_flag("--faults-from-pod", flags->faults_from_pod,
                "follow the podlb.io/fault-* annotations of this server's own Pod (named by "
                "--name / $POD_NAME) through the Kubernetes API; needs get, list, watch on pods");
  sub->add_option("--pod-namespace", flags->pod_namespace,
                  "the Pod's namespace for --faults-from-pod (default: $POD_NAMESPACE, else the "
                  "service account's namespace)");
  sub->add_option("--kubeconfig", flags->kubeconfig,
                  "for --faults-from-pod: kubeconfig file (default: the in-cluster service "
                  "account)");
  sub->add_option("--context", flags->context, "kubeconfig context (default: current)");
  table.push_back({sub, [flags] { return RunTestServer(*flags); }});
}

}  // namespace podlb::cli
