// batch/v1 Jobs in the sandbox: the JobController with real podlb processes as its pods
// (ProcessPodRuntime behind the routing runtime, as `podlb sandbox` runs them): a pod that exits
// 0 completes the Job; restartPolicy Never replaces failed pods up to backoffLimit, OnFailure
// restarts the container in place; activeDeadlineSeconds; deleting the Job, its namespace or its
// TTL deletes its pods; the API server's defaults and 422s; and the same through kubectl 1.32
// (apply, wait --for=condition=complete, logs job/NAME, get jobs, delete job). The pods mount
// their namespace's "default" ServiceAccount, which the ServiceAccountController creates.
#include <filesystem>
#include <regex>
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/api_handler.h"
#include "sandbox/apiserver/api_server.h"
#include "sandbox/apiserver/object_validation.h"
#include "sandbox/controller_test_support.h"
#include "sandbox/controllers/job_controller.h"
#include "sandbox/controllers/namespace_controller.h"
#include "sandbox/controllers/serviceaccount_controller.h"
#include "sandbox/pods/process_pod_runtime.h"
#include "sandbox/pods/routing_pod_runtime.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using testing::Objects;
using testing::WaitForObjects;
using namespace std::chrono_literals;
constexpr auto kTimeout = 30s;

// A Job whose one container runs podlb's image with `args`; `extra` is merged into its spec.
json JobObject(const std::string& name, const json& args, const std::string& restart_policy,
               const json& extra = json::object()) {
  json job = {
      {"apiVersion", "batch/v1"},
      {"kind", "Job"},
      {"metadata", {{"name", name}, {"namespace", "default"}}},
      {"spec",
       {{"template",
         {{"metadata", {{"labels", {{"app", name}}}}},
          {"spec",
           {{"restartPolicy", restart_policy},
            {"terminationGracePeriodSeconds", 2},
            {"containers",
             json::array(
                 {{{"name", "main"}, {"image", "podlb/podlb-demo:0.1.0"}, {"args", args}}})}}}}}}}};
  job["spec"].update(extra);
  return job;
}

// A process that runs until it is stopped, and exits at once on SIGTERM.
json LongRunning(const std::string& ip) {
  return json::array({"test-server", "--listen", ip + ":0", "--drain", "0"});
}

bool HasCondition(const json& job, const std::string& type, const std::string& reason = "") {
  for (const auto& c : job["status"].value("conditions", json::array())) {
    if (c.value("type", "") == type && c.value("status", "") == "True" &&
        (reason.empty() || c.value("reason", "") == reason)) {
      return true;
    }
  }
  return false;
}

class JobControllerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions options;
    options.tokens = {"good-token"};
    options.pod_logs = [this](const std::string& ns, const std::string& pod,
                              const std::string& container, bool previous) {
      return process_->Logs(ns, pod, container, previous);
    };
    server_ = std::make_unique<ApiServer>(options, store_);
    ASSERT_TRUE(server_->Start().ok());
    kubeconfig_ = dir_.path() + "/kubeconfig";
    podlb::testing::WriteFile(kubeconfig_,
                              MakeKubeconfig(server_->url(), server_->ca_pem(), "good-token"));
    // Every namespace gets its "default" account, which the Jobs' pods mount.
    accounts_ = std::make_unique<ServiceAccountController>(*store_);
    ASSERT_TRUE(accounts_->Start().ok());
    ProcessPodRuntimeOptions runtime;
    runtime.podlb_binary = podlb::testing::PodlbBinary();
    runtime.state_dir = dir_.path() + "/state";
    runtime.api_port = server_->port();
    runtime.ca_pem = server_->ca_pem();
    runtime.issue_token = [this](const std::string& ns, const std::string& account) {
      return server_->IssueServiceAccountToken(ns, account, std::chrono::hours(1));
    };
    runtime.restart_backoff = 100ms;
    process_ = std::make_unique<ProcessPodRuntime>(*store_, runtime);
    routing_ = std::make_unique<RoutingPodRuntime>(backends_, process_.get());
    JobControllerOptions job_options;
    job_options.grace_period = 50ms;
    jobs_ = std::make_unique<JobController>(*store_, *routing_, ips_, job_options);
    ASSERT_TRUE(jobs_->Start().ok());
    namespaces_ = std::make_unique<NamespaceController>(*store_);
    ASSERT_TRUE(namespaces_->Start().ok());
  }
  void TearDown() override {
    if (namespaces_) namespaces_->Stop();
    if (jobs_) jobs_->Stop();
    if (accounts_) accounts_->Stop();
    if (process_) process_->StopAll();
  }

  json CreateJob(const json& job) {
    auto created = store_->Create("jobs", job["metadata"].value("namespace", "default"), job);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : json();
  }
  [[nodiscard]] ::testing::AssertionResult WaitJob(const std::string& name,
                                                   const std::function<bool(const json&)>& done,
                                                   const std::string& what,
                                                   const std::string& ns = "default") {
    return WaitForObjects(
        *store_, "jobs", ns,
        [&](const Objects& jobs) {
          for (const auto& job : jobs) {
            if (job["metadata"]["name"] == name && done(job)) return true;
          }
          return false;
        },
        kTimeout, what);
  }
  [[nodiscard]] ::testing::AssertionResult WaitPods(const std::function<bool(const Objects&)>& done,
                                                    const std::string& what,
                                                    const std::string& ns = "default") {
    return WaitForObjects(*store_, "pods", ns, done, kTimeout, what);
  }
  Objects Pods(const std::string& ns = "default") {
    return store_->List("pods", ns, LabelSelector{}).items;
  }
  std::vector<std::string> EventReasons(const std::string& kind, const std::string& name) {
    std::vector<std::string> reasons;
    for (const auto& e : store_->List("events", "default", LabelSelector{}).items) {
      if (e["involvedObject"].value("kind", "") == kind &&
          e["involvedObject"].value("name", "") == name) {
        reasons.push_back(e.value("reason", ""));
      }
    }
    return reasons;
  }
  int Kubectl(std::vector<std::string> args, std::string* output) {
    std::vector<std::string> argv = {"kubectl", "--kubeconfig", kubeconfig_, "--cache-dir",
                                     dir_.path() + "/cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return podlb::testing::RunCommand(argv, output, 60s);
  }
  std::string Manifest(const std::string& name, const std::string& text) {
    std::string path = dir_.path() + "/" + name;
    podlb::testing::WriteFile(path, text);
    return path;
  }

  std::shared_ptr<ResourceStore> store_ = std::make_shared<ResourceStore>();
  std::unique_ptr<ApiServer> server_;
  podlb::testing::TempDir dir_;
  std::string kubeconfig_;
  NullPodRuntime backends_;
  std::unique_ptr<ProcessPodRuntime> process_;
  std::unique_ptr<RoutingPodRuntime> routing_;
  PodIpAllocator ips_{"127.0.91.2"};
  std::unique_ptr<JobController> jobs_;
  std::unique_ptr<NamespaceController> namespaces_;
  std::unique_ptr<ServiceAccountController> accounts_;
};

TEST_F(JobControllerTest, CreateGeneratesTheSelectorAndPodLabelsAndDefaults) {
  json job = CreateJob(JobObject("gen", json::array({"--version"}), "Never"));
  std::string uid = job["metadata"]["uid"];
  ASSERT_FALSE(uid.empty());
  EXPECT_EQ(job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"], uid);
  EXPECT_EQ(job["spec"]["selector"]["matchLabels"]["controller-uid"], uid);
  const json& labels = job["spec"]["template"]["metadata"]["labels"];
  EXPECT_EQ(labels["app"], "gen");
  EXPECT_EQ(labels["batch.kubernetes.io/controller-uid"], uid);
  EXPECT_EQ(labels["controller-uid"], uid);
  EXPECT_EQ(labels["batch.kubernetes.io/job-name"], "gen");
  EXPECT_EQ(labels["job-name"], "gen");
  EXPECT_EQ(job["spec"]["parallelism"], 1);
  EXPECT_EQ(job["spec"]["completions"], 1);
  EXPECT_EQ(job["spec"]["backoffLimit"], 6);
  EXPECT_EQ(job["spec"]["completionMode"], "NonIndexed");
  EXPECT_EQ(job["spec"]["suspend"], false);

  // manualSelector: the selector and labels are the user's own.
  json manual =
      JobObject("manual", json::array({"--version"}), "Never",
                {{"manualSelector", true}, {"selector", {{"matchLabels", {{"app", "manual"}}}}}});
  json created = CreateJob(manual);
  EXPECT_EQ(created["spec"]["selector"], manual["spec"]["selector"]);
  EXPECT_FALSE(created["spec"]["template"]["metadata"]["labels"].contains("controller-uid"));
}

TEST_F(JobControllerTest, ApiRefusesBadJobsWithTheRealMessages) {
  const ResourceType& type = *FindResourceType("batch", "jobs");
  auto messages = [&](const json& job) {
    std::vector<std::string> out;
    for (const auto& cause : ValidateForApi(type, job))
      out.push_back(cause.field + ": " + cause.message);
    return out;
  };
  EXPECT_THAT(messages(JobObject("a", json::array(), "Always")),
              ::testing::ElementsAre("spec.template.spec.restartPolicy: Unsupported value: "
                                     "\"Always\": supported values: \"OnFailure\", \"Never\""));
  json no_policy = JobObject("a", json::array(), "Never");
  no_policy["spec"]["template"]["spec"].erase("restartPolicy");
  EXPECT_THAT(messages(no_policy),
              ::testing::ElementsAre(HasSubstr("Unsupported value: \"Always\"")));
  EXPECT_THAT(
      messages(JobObject("a", json::array(), "Never", {{"backoffLimit", -1}, {"parallelism", -2}})),
      ::testing::UnorderedElementsAre(
          "spec.parallelism: Invalid value: -2: must be greater than or equal to 0",
          "spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0"));
  json no_template = {{"metadata", {{"name", "a"}}}, {"spec", json::object()}};
  EXPECT_THAT(messages(no_template), ::testing::ElementsAre("spec.template: Required value"));
  json no_containers = JobObject("a", json::array(), "Never");
  no_containers["spec"]["template"]["spec"]["containers"] = json::array();
  EXPECT_THAT(messages(no_containers),
              ::testing::ElementsAre("spec.template.spec.containers: Required value"));
  EXPECT_THAT(messages(JobObject("a", json::array(), "Never",
                                 {{"selector", {{"matchLabels", {{"app", "a"}}}}}})),
              ::testing::ElementsAre(HasSubstr("spec.selector: Invalid value: ")));

  // A Deployment's pods run until deleted: its template must restart Always.
  json deployment = {
      {"metadata", {{"name", "web"}}},
      {"spec",
       {{"selector", {{"matchLabels", {{"app", "web"}}}}},
        {"template", JobObject("web", json::array(), "Never")["spec"]["template"]}}}};
  deployment["spec"]["template"]["metadata"]["labels"] = {{"app", "web"}};
  auto deployment_causes = ValidateForApi(*FindResourceType("apps", "deployments"), deployment);
  ASSERT_EQ(deployment_causes.size(), 1u);
  EXPECT_EQ(deployment_causes[0].field + ": " + deployment_causes[0].message,
            "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: "
            "\"Always\"");

  // Through the API: 422 Invalid, worded as the real server words it, and nothing stored.
  ResourceRoute route{.type = &type, .ns = "default"};
  auto refused = CheckWrite(route, JobObject("bad", json::array(), "Always"), "bad");
  ASSERT_TRUE(refused.has_value());
  EXPECT_EQ(refused->code, 422);
  EXPECT_EQ(refused->body["reason"], "Invalid");
  EXPECT_EQ(refused->body["message"],
            "Job.batch \"bad\" is invalid: spec.template.spec.restartPolicy: Unsupported value: "
            "\"Always\": supported values: \"OnFailure\", \"Never\"");
  EXPECT_EQ(refused->body["details"]["causes"][0]["reason"], "FieldValueNotSupported");

  // The pod template is immutable; the stored Job stays as it was.
  json job =
      CreateJob(JobObject("fixed", LongRunning("127.0.91.250"), "Never", {{"suspend", true}}));
  json changed = job;
  changed["spec"]["template"]["spec"]["containers"][0]["args"] = json::array({"--version"});
  // Unconditional (no resourceVersion): the controller writes the Job's status meanwhile, and a
  // stale version would be refused with 409 before the template is even looked at.
  changed["metadata"].erase("resourceVersion");
  auto updated = store_->Update("jobs", "default", changed);
  ASSERT_FALSE(updated.ok());
  EXPECT_EQ(updated.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(updated.status().message()),
              HasSubstr("Job.batch \"fixed\" is invalid: spec.template: Invalid value: "));
  EXPECT_THAT(std::string(updated.status().message()), HasSubstr("field is immutable"));
  EXPECT_EQ((*store_->Get("jobs", "default", "fixed"))["spec"]["template"],
            job["spec"]["template"]);
  // Other fields stay mutable (the controller's status, suspend, ttl).
  json resumed = *store_->Get("jobs", "default", "fixed");
  resumed["metadata"].erase("resourceVersion");
  resumed["spec"]["ttlSecondsAfterFinished"] = 5;
  EXPECT_TRUE(store_->Update("jobs", "default", resumed).ok());
}

TEST_F(JobControllerTest, CompletesWhenItsPodExitsZeroAndKeepsThePodAndItsLogs) {
  CreateJob(JobObject("version", json::array({"--version"}), "Never"));
  ASSERT_TRUE(WaitJob(
      "version", [](const json& j) { return HasCondition(j, "Complete"); },
      "Job version Complete"));
  json job = *store_->Get("jobs", "default", "version");
  EXPECT_TRUE(HasCondition(job, "Complete", "CompletionsReached")) << job.dump(1);
  EXPECT_TRUE(HasCondition(job, "SuccessCriteriaMet")) << job.dump(1);
  EXPECT_EQ(job["status"].value("succeeded", 0), 1);
  EXPECT_FALSE(job["status"].contains("failed"));
  EXPECT_FALSE(job["status"].contains("active"));
  EXPECT_TRUE(job["status"].contains("startTime"));
  EXPECT_TRUE(job["status"].contains("completionTime"));

  Objects pods = Pods();
  ASSERT_EQ(pods.size(), 1u);
  const json& pod = pods[0];
  std::string name = pod["metadata"]["name"];
  EXPECT_TRUE(std::regex_match(name, std::regex("version-[a-z0-9]{5}"))) << name;
  EXPECT_EQ(pod["status"]["phase"], "Succeeded");
  const json& owner = pod["metadata"]["ownerReferences"][0];
  EXPECT_EQ(owner["apiVersion"], "batch/v1");
  EXPECT_EQ(owner["kind"], "Job");
  EXPECT_EQ(owner["name"], "version");
  EXPECT_EQ(owner["uid"], job["metadata"]["uid"]);
  EXPECT_EQ(owner["controller"], true);
  EXPECT_EQ(pod["metadata"]["labels"]["job-name"], "version");
  EXPECT_EQ(pod["metadata"]["labels"]["batch.kubernetes.io/controller-uid"],
            job["metadata"]["uid"]);
  const json& terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"];
  EXPECT_EQ(terminated["exitCode"], 0);
  EXPECT_EQ(terminated["reason"], "Completed");
  EXPECT_TRUE(terminated.contains("startedAt"));
  EXPECT_TRUE(terminated.contains("finishedAt"));
  EXPECT_EQ(pod["status"]["containerStatuses"][0]["restartCount"], 0);
  for (const auto& c : pod["status"]["conditions"]) {
    if (c["type"] == "Ready") {
      EXPECT_EQ(c["status"], "False");
      EXPECT_EQ(c["reason"], "PodCompleted");
    }
  }
  auto logs = process_->Logs("default", name, "");
  ASSERT_TRUE(logs.ok()) << logs.status();
  EXPECT_THAT(*logs, HasSubstr("podlb 0.1.0"));
  EXPECT_THAT(EventReasons("Job", "version"),
              ::testing::IsSupersetOf({"SuccessfulCreate", "Completed"}));

  // Deleting the Job deletes its finished pod and the pod's directory (the GC's cascade).
  std::string pod_dir = dir_.path() + "/state/pods/default/" + name;
  EXPECT_TRUE(std::filesystem::exists(pod_dir));
  ASSERT_TRUE(store_->Delete("jobs", "default", "version").ok());
  ASSERT_TRUE(WaitPods([](const Objects& p) { return p.empty(); }, "no pods"));
  ASSERT_TRUE(podlb::testing::WaitFor([&] { return !std::filesystem::exists(pod_dir); }, 10s,
                                      "the pod's directory removed"));
}

TEST_F(JobControllerTest, NeverReplacesAFailedPodUntilTheBackoffLimit) {
  // `podlb --no-such-flag` exits 2.
  CreateJob(JobObject("fails", json::array({"--no-such-flag"}), "Never", {{"backoffLimit", 1}}));
  ASSERT_TRUE(WaitJob(
      "fails", [](const json& j) { return HasCondition(j, "Failed"); }, "Job fails Failed"));
  json job = *store_->Get("jobs", "default", "fails");
  EXPECT_TRUE(HasCondition(job, "Failed", "BackoffLimitExceeded")) << job.dump(1);
  EXPECT_TRUE(HasCondition(job, "FailureTarget", "BackoffLimitExceeded")) << job.dump(1);
  EXPECT_EQ(job["status"].value("failed", 0), 2);
  EXPECT_FALSE(job["status"].contains("succeeded"));
  for (const auto& c : job["status"]["conditions"]) {
    if (c["type"] == "Failed") {
      EXPECT_EQ(c["message"], "Job has reached the specified backoff limit");
      EXPECT_TRUE(c.contains("lastProbeTime"));
      EXPECT_TRUE(c.contains("lastTransitionTime"));
    }
  }
  Objects pods = Pods();
  ASSERT_EQ(pods.size(), 2u);  // one per failure, none restarted, none after the limit
  for (const auto& pod : pods) {
    EXPECT_EQ(pod["status"]["phase"], "Failed");
    const json& status = pod["status"]["containerStatuses"][0];
    EXPECT_EQ(status["restartCount"], 0);
    EXPECT_EQ(status["state"]["terminated"]["exitCode"], 2);
    EXPECT_EQ(status["state"]["terminated"]["reason"], "Error");
  }
  EXPECT_THAT(EventReasons("Job", "fails"), ::testing::Contains("BackoffLimitExceeded"));
}

TEST_F(JobControllerTest, OnFailureRestartsTheContainerInPlaceAndCountsRestarts) {
  CreateJob(
      JobObject("retries", json::array({"--no-such-flag"}), "OnFailure", {{"backoffLimit", 2}}));
  ASSERT_TRUE(WaitJob(
      "retries", [](const json& j) { return HasCondition(j, "Failed"); }, "Job retries Failed"));
  json job = *store_->Get("jobs", "default", "retries");
  EXPECT_TRUE(HasCondition(job, "Failed", "BackoffLimitExceeded")) << job.dump(1);
  // One pod, restarted in place until its restarts reached the limit, then deleted.
  ASSERT_TRUE(WaitPods([](const Objects& p) { return p.empty(); }, "the running pod deleted"));
  std::set<std::string> created;
  for (const auto& e : store_->List("events", "default", LabelSelector{}).items) {
    if (e.value("reason", "") == "SuccessfulCreate") created.insert(e.value("message", ""));
  }
  EXPECT_EQ(created.size(), 1u);
}

TEST_F(JobControllerTest, OnFailureSucceedsWithoutRestartOnExitZero) {
  CreateJob(JobObject("once", json::array({"--version"}), "OnFailure"));
  ASSERT_TRUE(WaitJob(
      "once", [](const json& j) { return HasCondition(j, "Complete"); }, "Job once Complete"));
  Objects pods = Pods();
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0]["status"]["phase"], "Succeeded");
  EXPECT_EQ(pods[0]["status"]["containerStatuses"][0]["restartCount"], 0);
}

TEST_F(JobControllerTest, ActiveDeadlineFailsTheJobAndDeletesItsPods) {
  CreateJob(
      JobObject("slow", LongRunning("127.0.91.251"), "Never", {{"activeDeadlineSeconds", 1}}));
  ASSERT_TRUE(WaitJob(
      "slow", [](const json& j) { return HasCondition(j, "Failed"); }, "Job slow Failed"));
  json job = *store_->Get("jobs", "default", "slow");
  EXPECT_TRUE(HasCondition(job, "Failed", "DeadlineExceeded")) << job.dump(1);
  ASSERT_TRUE(WaitPods([](const Objects& p) { return p.empty(); }, "the running pod deleted"));
  EXPECT_THAT(EventReasons("Job", "slow"), ::testing::Contains("DeadlineExceeded"));
}

TEST_F(JobControllerTest, DeletingARunningJobDeletesItsPods) {
  CreateJob(JobObject("server", LongRunning("127.0.91.252"), "Never"));
  ASSERT_TRUE(WaitJob(
      "server", [](const json& j) { return j["status"].value("active", 0) == 1; },
      "one active pod"));
  ASSERT_TRUE(WaitPods(
      [](const Objects& p) { return p.size() == 1 && p[0]["status"]["phase"] == "Running"; },
      "the pod Running"));
  ASSERT_TRUE(store_->Delete("jobs", "default", "server").ok());
  ASSERT_TRUE(WaitPods([](const Objects& p) { return p.empty(); }, "no pods"));
}

TEST_F(JobControllerTest, TtlAfterFinishedDeletesTheJobAndItsPods) {
  CreateJob(
      JobObject("short", json::array({"--version"}), "Never", {{"ttlSecondsAfterFinished", 1}}));
  ASSERT_TRUE(WaitForObjects(
      *store_, "events", "default",
      [](const Objects& events) {
        for (const auto& e : events) {
          if (e.value("reason", "") == "Completed") return true;
        }
        return false;
      },
      kTimeout, "the Completed event"));
  ASSERT_TRUE(WaitForObjects(
      *store_, "jobs", "default", [](const Objects& jobs) { return jobs.empty(); }, kTimeout,
      "the Job deleted by its TTL"));
  ASSERT_TRUE(WaitPods([](const Objects& p) { return p.empty(); }, "no pods"));
}

TEST_F(JobControllerTest, DeletingTheNamespaceDeletesItsJobsAndPods) {
  ASSERT_TRUE(store_->Create("namespaces", "", {{"metadata", {{"name", "scratch"}}}}).ok());

  json job = JobObject("server", LongRunning("127.0.91.253"), "Never");
  job["metadata"]["namespace"] = "scratch";
  CreateJob(job);
  ASSERT_TRUE(WaitPods([](const Objects& p) { return p.size() == 1; }, "one pod", "scratch"));
  ASSERT_TRUE(MutateNamespaceForDeletion(*store_, "scratch").ok());
  ASSERT_TRUE(
      podlb::testing::WaitFor([&] { return !store_->Get("namespaces", "", "scratch").ok(); },
                              kTimeout, "namespace scratch gone"));
  EXPECT_TRUE(store_->List("jobs", "scratch", LabelSelector{}).items.empty());
  ASSERT_TRUE(WaitPods([](const Objects& p) { return p.empty(); }, "no pods", "scratch"));
}

TEST_F(JobControllerTest, EveryNamespaceHasADefaultServiceAccountAgainWhenDeleted) {
  ASSERT_TRUE(podlb::testing::WaitFor(
      [&] { return store_->Get("serviceaccounts", "default", "default").ok(); }, kTimeout,
      "default/default created"));
  ASSERT_TRUE(store_->Delete("serviceaccounts", "default", "default").ok());
  ASSERT_TRUE(podlb::testing::WaitFor(
      [&] { return store_->Get("serviceaccounts", "default", "default").ok(); }, kTimeout,
      "default/default created again"));
}

constexpr char kVersionJob[] = R"(apiVersion: batch/v1
kind: Job
metadata:
  name: version
  namespace: default
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: podlb
          image: podlb/podlb-demo:0.1.0
          command: ["/podlb"]
          args: ["--version"]
)";

constexpr char kAlwaysJob[] = R"(apiVersion: batch/v1
kind: Job
metadata:
  name: always
  namespace: default
spec:
  template:
    spec:
      restartPolicy: Always
      containers:
        - name: podlb
          image: podlb/podlb-demo:0.1.0
          args: ["--version"]
)";

TEST_F(JobControllerTest, KubectlAppliesWaitsReadsLogsListsAndDeletesAJob) {
  std::string output;
  ASSERT_EQ(Kubectl({"apply", "-f", Manifest("version.yaml", kVersionJob)}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("job.batch/version created"));
  ASSERT_EQ(Kubectl({"wait", "--for=condition=complete", "job/version", "--timeout=60s"}, &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("job.batch/version condition met"));
  ASSERT_EQ(Kubectl({"logs", "job/version"}, &output), 0) << output;
  EXPECT_EQ(output, "podlb 0.1.0\n");
  ASSERT_EQ(Kubectl({"get", "jobs"}, &output), 0) << output;
  EXPECT_TRUE(std::regex_search(
      output,
      std::regex("NAME +STATUS +COMPLETIONS +DURATION +AGE\nversion +Complete +1/1 +[0-9]+s "
                 "+[0-9]+s")))
      << output;
  ASSERT_EQ(Kubectl({"get", "pods"}, &output), 0) << output;
  EXPECT_TRUE(std::regex_search(output, std::regex("version-[a-z0-9]{5} +0/1 +Completed +0")))
      << output;
  // Applying the same manifest again changes nothing (the generated selector and labels stay).
  ASSERT_EQ(Kubectl({"apply", "-f", Manifest("version.yaml", kVersionJob)}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("job.batch/version unchanged"));

  ASSERT_EQ(Kubectl({"delete", "job", "version"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("job.batch \"version\" deleted"));
  ASSERT_TRUE(WaitPods([](const Objects& p) { return p.empty(); }, "the Job's pod deleted"));
}

TEST_F(JobControllerTest, KubectlIsRefusedAJobThatRestartsAlways) {
  std::string output;
  EXPECT_NE(Kubectl({"apply", "-f", Manifest("always.yaml", kAlwaysJob)}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("The Job \"always\" is invalid: spec.template.spec.restartPolicy: "
                                "Unsupported value: \"Always\": supported values: \"OnFailure\", "
                                "\"Never\""));
  EXPECT_FALSE(store_->Get("jobs", "default", "always").ok());
}

}  // namespace
}  // namespace podlb::sandbox
