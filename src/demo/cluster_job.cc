#include "demo/cluster_job.h"

#include <random>
#include <thread>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace podlb::demo {
namespace {

using nlohmann::json;

constexpr char kJobName[] = "podlb-demo";
constexpr char kContainer[] = "demo";

// A waiting reason that will not pass by itself: the pod can never start as it is.
bool StuckWaiting(const std::string& reason) {
  return reason == "ErrImageNeverPull" || reason == "ImagePullBackOff" ||
         reason == "InvalidImageName" || reason == "CreateContainerConfigError" ||
         reason == "CreateContainerError";
}

std::string RandomSuffix() {
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";  // as generateName's
  std::mt19937 rng(std::random_device{}());
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  std::string out;
  for (int i = 0; i < 5; ++i) out += kAlphabet[pick(rng)];
  return out;
}

json ManagedLabels() {
  return {{"app.kubernetes.io/part-of", "podlb-demo"},
          {"app.kubernetes.io/managed-by", "podlb"}};
}

json Rule(std::vector<std::string> groups, std::vector<std::string> resources,
          std::vector<std::string> verbs) {
  return {{"apiGroups", groups}, {"resources", resources}, {"verbs", verbs}};
}

json Role(const std::string& ns, const std::string& name, json rules) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "Role"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", ManagedLabels()}}},
          {"rules", std::move(rules)}};
}

json RoleBinding(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "rbac.authorization.k8s.io/v1"},
          {"kind", "RoleBinding"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", ManagedLabels()}}},
          {"roleRef",
           {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", name}}},
          {"subjects",
           json::array({{{"kind", "ServiceAccount"}, {"name", name}, {"namespace", ns}}})}};
}

json ServiceAccount(const std::string& ns, const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "ServiceAccount"},
          {"metadata", {{"name", name}, {"namespace", ns}, {"labels", ManagedLabels()}}}};
}

// The waiting reason and message of the Job pod's container, if it is waiting.
std::pair<std::string, std::string> Waiting(const json& pod) {
  const json statuses = pod.value("/status/containerStatuses"_json_pointer, json::array());
  for (const auto& status : statuses) {
    const json waiting = status.value("/state/waiting"_json_pointer, json::object());
    if (waiting.contains("reason")) {
      return {waiting.value("reason", ""), waiting.value("message", "")};
    }
  }
  return {};
}

// The container's exit code once it has ended.
std::optional<int> ExitCode(const json& pod) {
  const json statuses = pod.value("/status/containerStatuses"_json_pointer, json::array());
  for (const auto& status : statuses) {
    const json terminated = status.value("/state/terminated"_json_pointer, json());
    if (terminated.is_object() && terminated.contains("exitCode")) {
      return terminated["exitCode"].get<int>();
    }
  }
  return std::nullopt;
}

// "Complete" or "Failed" (with its reason and message) once the Job has finished, else "".
std::string Finished(const json& job, std::string* why) {
  for (const auto& condition : job.value("/status/conditions"_json_pointer, json::array())) {
    const std::string type = condition.value("type", "");
    if ((type == "Complete" || type == "Failed") && condition.value("status", "") == "True") {
      *why = absl::StrCat(condition.value("reason", ""), ": ", condition.value("message", ""));
      return type;
    }
  }
  return "";
}

}  // namespace

json DemoRunnerRole(const std::string& ns) {
  return Role(
      ns, kDemoRunnerAccount,
      json::array({
          // The backends of each run: create, scale, restart, delete.
          Rule({"apps"}, {"deployments"}, {"get", "list", "watch", "create", "patch", "delete"}),
          Rule({"apps"}, {"deployments/scale"}, {"get", "patch"}),
          Rule({""}, {"services"}, {"get", "list", "watch", "create", "patch", "delete"}),
          // The fault scenarios annotate one pod.
          Rule({""}, {"pods"}, {"get", "list", "watch", "patch"}),
          // What podlb's discovery reads (deploy/01-rbac.yaml's rules).
          Rule({"discovery.k8s.io"}, {"endpointslices"}, {"get", "list", "watch"}),
          Rule({""}, {"endpoints"}, {"get", "list", "watch"}),
      }));
}

json DemoBackendRole(const std::string& ns) {
  return Role(ns, kDemoBackendAccount,
              json::array({Rule({""}, {"pods"}, {"get", "list", "watch"})}));
}

ClusterDemoJob::ClusterDemoJob(ClusterJobOptions options) : options_(std::move(options)) {}
ClusterDemoJob::~ClusterDemoJob() = default;

std::string ClusterDemoJob::ns() const {
  absl::MutexLock lock(&mu_);
  return ns_;
}

absl::StatusOr<int> ClusterDemoJob::Run() {
  auto client = ApiClient::Create(options_.config);
  if (!client.ok()) return client.status();
  client_ = std::move(*client);
  auto result = [&]() -> absl::StatusOr<int> {
    if (auto status = CreateNamespaceAndAccess(); !status.ok()) return status;
    if (auto status = CreateJob(); !status.ok()) return status;
    return AwaitJob();
  }();
  if (!options_.keep_namespace) Cleanup();
  return result;
}

void ClusterDemoJob::Cleanup() {
  std::string ns;
  {
    absl::MutexLock lock(&mu_);
    if (cleaned_ || ns_.empty()) return;
    cleaned_ = true;
    ns = ns_;
  }
  // Its own client: Run may be in the middle of a request on the other thread.
  auto client = ApiClient::Create(options_.config);
  absl::Status status = client.ok() ? SendJson(**client, "DELETE", "/api/v1/namespaces/" + ns,
                                               "application/json",
                                               R"({"propagationPolicy":"Background"})")
                                          .status()
                                    : client.status();
  if (options_.progress) {
    if (status.ok() || absl::IsNotFound(status)) {
      *options_.progress << "demo: deleted namespace " << ns << std::endl;
    } else {
      *options_.progress << "demo: could not delete namespace " << ns << ": " << status.message()
                         << " (delete it with `kubectl delete namespace " << ns << "`)"
                         << std::endl;
    }
  }
}

absl::Status ClusterDemoJob::CreateNamespaceAndAccess() {
  // A name of our own rather than generateName: Cleanup must know it even if the answer to the
  // create is lost.
  std::string ns = absl::StrCat("podlb-demo-", RandomSuffix());
  {
    absl::MutexLock lock(&mu_);
    ns_ = ns;
  }
  json namespace_object = {{"apiVersion", "v1"},
                           {"kind", "Namespace"},
                           {"metadata", {{"name", ns}, {"labels", ManagedLabels()}}}};
  auto created = SendJson(*client_, "POST", "/api/v1/namespaces", "application/json",
                          namespace_object.dump());
  if (!created.ok()) {
    {
      absl::MutexLock lock(&mu_);
      ns_.clear();  // not ours to delete
    }
    return absl::Status(created.status().code(),
                        absl::StrCat("cannot create the demo's namespace: ",
                                     created.status().message()));
  }
  if (options_.progress) *options_.progress << "demo: namespace " << ns << std::endl;
  const std::string core = "/api/v1/namespaces/" + ns;
  const std::string rbac = "/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns;
  const std::vector<std::pair<std::string, json>> objects = {
      {core + "/serviceaccounts", ServiceAccount(ns, kDemoRunnerAccount)},
      {core + "/serviceaccounts", ServiceAccount(ns, kDemoBackendAccount)},
      {rbac + "/roles", DemoRunnerRole(ns)},
      {rbac + "/rolebindings", RoleBinding(ns, kDemoRunnerAccount)},
      {rbac + "/roles", DemoBackendRole(ns)},
      {rbac + "/rolebindings", RoleBinding(ns, kDemoBackendAccount)},
  };
  for (const auto& [path, object] : objects) {
    auto answer = SendJson(*client_, "POST", path, "application/json", object.dump());
    if (!answer.ok()) {
      return absl::Status(answer.status().code(),
                          absl::StrCat("cannot create ", object.value("kind", ""), " ",
                                       object["metadata"].value("name", ""), ": ",
                                       answer.status().message()));
    }
  }
  return absl::OkStatus();
}

absl::Status ClusterDemoJob::CreateJob() {
  const std::string ns = this->ns();
  std::vector<std::string> args = {"demo",  "--in-cluster",        "--image",
                                   options_.image, "--image-pull-policy", options_.image_pull_policy};
  args.insert(args.end(), options_.demo_args.begin(), options_.demo_args.end());
  json container = {
      {"name", kContainer},
      {"image", options_.image},
      {"imagePullPolicy", options_.image_pull_policy},
      {"args", args},
      {"env", json::array({{{"name", "POD_NAMESPACE"},
                            {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.namespace"}}}}}}})},
  };
  json job = {
      {"apiVersion", "batch/v1"},
      {"kind", "Job"},
      {"metadata", {{"name", kJobName}, {"namespace", ns}, {"labels", ManagedLabels()}}},
      {"spec",
       {// A demo that failed says why in its log; running it again would not help.
        {"backoffLimit", 0},
        {"activeDeadlineSeconds", absl::ToInt64Seconds(options_.timeout)},
        {"template",
         {{"metadata", {{"labels", ManagedLabels()}}},
          {"spec",
           {{"restartPolicy", "Never"},
            {"serviceAccountName", kDemoRunnerAccount},
            {"containers", json::array({container})}}}}}}}};
  auto created = SendJson(*client_, "POST", "/apis/batch/v1/namespaces/" + ns + "/jobs",
                          "application/json", job.dump());
  if (!created.ok()) {
    return absl::Status(created.status().code(), absl::StrCat("cannot create the demo's Job: ",
                                                              created.status().message()));
  }
  if (options_.progress) {
    *options_.progress << "demo: job " << ns << "/" << kJobName << " runs " << options_.image
                       << std::endl;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ClusterDemoJob::JobLog(const std::string& pod) {
  // Text, not JSON: the container's output as it wrote it.
  auto answer = client_->Get(
      absl::StrCat("/api/v1/namespaces/", ns(), "/pods/", pod, "/log?container=", kContainer),
      nullptr);
  if (!answer.ok()) return answer.status();
  if (answer->status != 200) {
    return absl::UnavailableError(
        absl::StrCat("logs of pod ", pod, ": HTTP ", answer->status, ": ", answer->body));
  }
  return std::move(answer->body);
}

absl::StatusOr<int> ClusterDemoJob::AwaitJob() {
  const std::string ns = this->ns();
  const std::string job_path = absl::StrCat("/apis/batch/v1/namespaces/", ns, "/jobs/", kJobName);
  const std::string pods_path =
      absl::StrCat("/api/v1/namespaces/", ns, "/pods?labelSelector=job-name%3D", kJobName);
  const absl::Time deadline = absl::Now() + options_.timeout + absl::Minutes(1);
  size_t relayed = 0;  // bytes of the log already relayed to progress
  std::string pod_name;
  auto relay = [&](const std::string& log) {
    // Up to the result, or to the last whole line while there is none yet.
    size_t end = log.find(kJobResultMarker);
    if (end == std::string::npos) end = log.find_last_of('\n') + 1;  // npos + 1 == 0
    if (end > relayed && options_.progress) {
      *options_.progress << log.substr(relayed, end - relayed) << std::flush;
      relayed = end;
    }
  };
  while (true) {
    if (absl::Now() > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(
          "the demo's Job did not finish within ", absl::FormatDuration(options_.timeout)));
    }
    auto job = SendJson(*client_, "GET", job_path);
    if (!job.ok()) return job.status();
    auto pods = SendJson(*client_, "GET", pods_path);
    if (!pods.ok()) return pods.status();
    json pod;
    for (const auto& item : pods->value("items", json::array())) pod = item;
    if (pod.is_object()) {
      pod_name = pod["metadata"].value("name", "");
      auto [reason, message] = Waiting(pod);
      if (StuckWaiting(reason)) {
        return absl::FailedPreconditionError(absl::StrCat(
            "the demo's pod ", pod_name, " cannot start: ", reason, ": ", message,
            " (build the image with `make image-demo`, make it pullable by the cluster's "
            "nodes, and pass --image)"));
      }
      const std::string phase = pod.value("/status/phase"_json_pointer, "");
      if (phase != "Pending") {
        if (auto log = JobLog(pod_name); log.ok()) relay(*log);
      }
    }
    std::string why;
    const std::string finished = Finished(*job, &why);
    if (!finished.empty()) {
      std::string log;
      if (!pod_name.empty()) {
        auto read = JobLog(pod_name);
        if (read.ok()) log = std::move(*read);
      }
      relay(log);
      size_t marker = log.find(kJobResultMarker);
      if (marker == std::string::npos) {
        return absl::InternalError(absl::StrCat(
            "the demo's Job ended (", finished, ", ", why, ") without a result; its log above "
            "says why (`kubectl logs -n ", ns, " job/", kJobName, "`)"));
      }
      size_t body = log.find('\n', marker);
      if (options_.result) {
        *options_.result << (body == std::string::npos ? "" : log.substr(body + 1))
                         << std::flush;
      }
      std::optional<int> code = pod.is_object() ? ExitCode(pod) : std::nullopt;
      if (!code) {
        // The pod listed before the Job's status was read may not have ended yet: ask again.
        auto again = SendJson(*client_, "GET",
                              absl::StrCat("/api/v1/namespaces/", ns, "/pods/", pod_name));
        if (again.ok()) code = ExitCode(*again);
      }
      return code.value_or(finished == "Complete" ? 0 : 1);
    }
    std::this_thread::sleep_for(absl::ToChronoMilliseconds(options_.poll));
  }
}

}  // namespace podlb::demo
