// The control plane end to end against the sandbox cluster: `podlb sandbox` (API server, deployment
// and EndpointSlice controllers, real gRPC pods) feeds `podlb control-plane --kubeconfig`, and
// Debian's grpc++ xDS client dials xds:///greeter.default:50051. Scaling and restarting go
// through `podlb sandbox scale|restart`, as kubectl would. gRPC's xDS client is process-wide and
// reads its bootstrap once, so the sandbox, control plane and channel are shared by the suite;
// each test first brings the deployment to the state it starts from.
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/process.h"
#include "xds/xds_test_backends.h"

namespace podlb::testing {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;
using std::chrono::milliseconds;
constexpr auto kTimeout = std::chrono::seconds(20);

// The official Python client's watch on the greeter's EndpointSlices: one line per event with
// CLOCK_MONOTONIC (the clock of std::chrono::steady_clock on Linux) so the test can tell when
// each pod became ready in the API server, to the millisecond.
constexpr char kWatchScript[] = R"PY(
import sys, time
from kubernetes import client, config, watch
config.load_kube_config(config_file=sys.argv[1])
api = client.DiscoveryV1Api()
for event in watch.Watch().stream(api.list_namespaced_endpoint_slice, namespace="default",
                                  label_selector="kubernetes.io/service-name=greeter",
                                  timeout_seconds=120):
    obj = event["object"]
    ready = [e.target_ref.name for e in (obj.endpoints or [])
             if e.conditions and e.conditions.ready and e.target_ref]
    print(time.monotonic_ns(), event["type"], obj.metadata.name, ",".join(ready) or "-",
          flush=True)
)PY";

struct Shared {
  TempDir dir;
  std::unique_ptr<ChildProcess> sandbox;
  std::unique_ptr<ChildProcess> control_plane;
  std::unique_ptr<grpc::testing::TestService::Stub> stub;
  std::string bootstrap;
};
Shared* g_shared = nullptr;

class SandboxXdsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    g_shared = new Shared;
    Shared& s = *g_shared;
    s.sandbox = std::make_unique<ChildProcess>(std::vector<std::string>{
        PodlbBinary(), "sandbox", "--state-dir", s.dir.path(), "--pod-port",
        std::to_string(PickFreePort()), "--grace-period", "1", "--first-pod-ip",
        "127.4." + std::to_string(getpid() % 250 + 1) + ".2"});
    if (!s.sandbox->WaitForLine([](const std::string& l) { return l == "ready"; }, kTimeout)) {
      return;
    }
    s.control_plane = std::make_unique<ChildProcess>(std::vector<std::string>{
        PodlbBinary(), "control-plane", "--kubeconfig", s.dir.path() + "/kubeconfig", "--listen",
        "127.0.0.1:0", "--admin", "127.0.0.1:0"});
    if (!s.control_plane->WaitForLineContaining("xds port", kTimeout)) return;
    int xds_port = 0;
    for (const std::string& line : s.control_plane->Lines()) {
      auto pos = line.find("xds port ");
      if (pos != std::string::npos) xds_port = std::stoi(line.substr(pos + 9));
    }
    json bootstrap = {{"xds_servers",
                       {{{"server_uri", "127.0.0.1:" + std::to_string(xds_port)},
                         {"channel_creds", {{{"type", "insecure"}}}},
                         {"server_features", {"xds_v3", "ignore_resource_deletion"}}}}},
                      {"node", {{"id", "sandbox-xds-test"}, {"locality", {{"zone", "z1"}}}}}};
    s.bootstrap = bootstrap.dump();
    setenv("GRPC_XDS_BOOTSTRAP_CONFIG", s.bootstrap.c_str(), 1);
    s.stub = grpc::testing::TestService::NewStub(grpc::CreateChannel(
        "xds:///greeter.default:50051", grpc::InsecureChannelCredentials()));
  }

  static void TearDownTestSuite() {
    if (g_shared != nullptr) g_shared->stub.reset();
    delete g_shared;
    g_shared = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(g_shared->stub, nullptr) << "the sandbox or the control plane did not start";
  }

  static const std::string& Dir() { return g_shared->dir.path(); }
  static std::string Kubeconfig() { return Dir() + "/kubeconfig"; }

  // The pod that answered, or "" on failure.
  static std::string Call(milliseconds timeout = milliseconds(5000), bool wait_for_ready = true) {
    grpc::ClientContext context;
    context.set_wait_for_ready(wait_for_ready);
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    grpc::Status status = g_shared->stub->UnaryCall(&context, request, &response);
    return status.ok() ? response.hostname() : "";
  }

  static void Sandbox(const std::string& verb, std::vector<std::string> extra = {}) {
    std::vector<std::string> argv = {PodlbBinary(), "sandbox", verb, "--state-dir", Dir(),
                                     "default/greeter"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string out;
    ASSERT_EQ(RunCommand(argv, &out), 0) << out;
  }

  // kubectl's view: every endpoint of the greeter (pod name -> ready).
  static std::map<std::string, bool> KubectlEndpoints() {
    std::string out;
    std::map<std::string, bool> eps;
    if (RunCommand({"kubectl", "--kubeconfig", Kubeconfig(), "get", "endpointslices", "-l",
                    "kubernetes.io/service-name=greeter", "-o", "json"},
                   &out) != 0) {
      return eps;
    }
    json list = json::parse(out.substr(std::min(out.find('{'), out.size())), nullptr, false);
    if (list.is_discarded()) return eps;
    try {
      for (const auto& slice : list.value("items", json::array())) {
        for (const auto& e : slice.value("endpoints", json::array())) {
          eps[e["targetRef"].value("name", "")] =
              e.value("conditions", json::object()).value("ready", false);
        }
      }
    } catch (const json::exception&) {
      eps.clear();
    }
    return eps;
  }

  // Waits until kubectl lists exactly `n` endpoints, all ready, none in `exclude`; returns them.
  static std::set<std::string> WaitReadyPods(size_t n, const std::set<std::string>& exclude = {}) {
    std::set<std::string> pods;
    EXPECT_TRUE(WaitFor(
        [&] {
          auto eps = KubectlEndpoints();
          pods.clear();
          for (const auto& [pod, ready] : eps) {
            if (!ready || exclude.count(pod)) return false;
            pods.insert(pod);
          }
          return pods.size() == n;
        },
        kTimeout, std::to_string(n) + " ready endpoints in kubectl"));
    return pods;
  }

  // Calls back to back until `window` consecutive calls all succeed on `pods` and every one of
  // them answered (a loop of calls, not a poll: each call is the event being waited for).
  static ::testing::AssertionResult WaitClientUses(const std::set<std::string>& pods,
                                                   int window = 60) {
    std::set<std::string> seen;
    int streak = 0;
    std::string last;
    auto deadline = Clock::now() + kTimeout;
    while (Clock::now() < deadline) {
      last = Call();
      if (last.empty() || !pods.count(last)) {
        streak = 0;
        seen.clear();
        continue;
      }
      seen.insert(last);
      if (++streak >= window && seen == pods) return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure()
           << "the xDS client never called exactly the " << pods.size()
           << " ready pods; last answer from \"" << last << "\"";
  }

  // Brings the deployment to `n` ready pods and the client to using exactly them.
  static std::set<std::string> Settle(size_t n) {
    Sandbox("scale", {std::to_string(n)});
    std::set<std::string> pods = WaitReadyPods(n);
    EXPECT_TRUE(WaitClientUses(pods));
    return pods;
  }

  // The Python watch of kWatchScript, started and past its initial list.
  static std::unique_ptr<ChildProcess> StartWatch() {
    WriteFile(Dir() + "/watch.py", kWatchScript);
    auto watcher = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/bin/python3", Dir() + "/watch.py", Kubeconfig()});
    EXPECT_TRUE(watcher->WaitForLineContaining(" ADDED ", kTimeout));
    return watcher;
  }

  // When the watch first listed each pod ready.
  static std::map<std::string, Clock::time_point> ReadyTimes(const ChildProcess& watcher) {
    std::map<std::string, Clock::time_point> ready_at;
    for (const std::string& line : watcher.Lines()) {
      std::istringstream in(line);
      int64_t ns = 0;
      std::string type, slice, ready;
      if (!(in >> ns >> type >> slice >> ready) || ready == "-") continue;
      for (absl::string_view pod : absl::StrSplit(ready, ',')) {
        ready_at.emplace(std::string(pod), Clock::time_point(std::chrono::nanoseconds(ns)));
      }
    }
    return ready_at;
  }

  // Checks that each pod not in `before` answered within 1 s of being ready; prints the lags.
  static void ExpectPromptFirstCalls(const ChildProcess& watcher,
                                     const std::map<std::string, Clock::time_point>& first_seen,
                                     const std::set<std::string>& before,
                                     Clock::time_point scaled) {
    std::map<std::string, Clock::time_point> ready_at;
    ASSERT_TRUE(WaitFor(
        [&] {
          ready_at = ReadyTimes(watcher);
          return ready_at.size() >= first_seen.size();
        },
        kTimeout, "the watch listing every pod ready"));
    auto ms = [](Clock::duration d) {
      return static_cast<long long>(std::chrono::duration_cast<milliseconds>(d).count());
    };
    for (const auto& [pod, seen] : first_seen) {
      if (before.count(pod)) continue;
      ASSERT_TRUE(ready_at.count(pod)) << pod << " answered but was never listed ready";
      auto lag = seen - ready_at[pod];
      EXPECT_LE(lag, milliseconds(1000)) << pod;
      std::printf("%s: ready at %+lld ms after the scale, first call at %+lld ms (lag %lld ms)\n",
                  pod.c_str(), ms(ready_at[pod] - scaled), ms(seen - scaled), ms(lag));
    }
  }

  static bool HaveNode() {
    return std::filesystem::exists(SourceDir() + "/node_modules/@grpc/grpc-js-xds");
  }

  // tests/xds/node/xds_loop.js calling the greeter back to back, past its first `n` answers.
  static std::unique_ptr<ChildProcess> StartNodeLoop(size_t n) {
    auto node = std::make_unique<ChildProcess>(
        std::vector<std::string>{"node", SourceDir() + "/tests/xds/node/xds_loop.js",
                                 "greeter.default:50051"},
        std::vector<std::string>{"GRPC_XDS_BOOTSTRAP_CONFIG=" + g_shared->bootstrap});
    EXPECT_TRUE(node->WaitForLine(
        [&, count = size_t{0}](const std::string& l) mutable {
          return l.starts_with("first ") && ++count >= n;
        },
        kTimeout));
    return node;
  }

  static std::map<std::string, Clock::time_point> NodeFirstSeen(const ChildProcess& node) {
    std::map<std::string, Clock::time_point> first;
    for (const std::string& line : node.Lines()) {
      std::istringstream in(line);
      std::string word, pod;
      int64_t ns = 0;
      if (in >> word >> pod >> ns && word == "first") {
        first.emplace(pod, Clock::time_point(std::chrono::nanoseconds(ns)));
      }
    }
    return first;
  }

  static std::vector<std::string> NodeFailures(const ChildProcess& node) {
    std::vector<std::string> failures;
    for (const std::string& line : node.Lines()) {
      if (line.starts_with("fail ")) failures.push_back(line);
    }
    return failures;
  }
};

double MaxOverMin(const std::map<std::string, int>& counts) {
  int lo = INT32_MAX, hi = 0;
  for (const auto& [name, n] : counts) {
    lo = std::min(lo, n);
    hi = std::max(hi, n);
  }
  return lo == 0 ? 1e9 : static_cast<double>(hi) / lo;
}

TEST_F(SandboxXdsTest, SpreadsEvenlyOverThreePods) {
  std::set<std::string> pods = Settle(3);
  std::map<std::string, int> counts;
  for (int i = 0; i < 300; ++i) counts[Call()]++;
  EXPECT_EQ(counts.count(""), 0u) << "failed calls: " << counts[""];
  EXPECT_EQ(counts.size(), 3u);
  for (const auto& [pod, n] : counts) EXPECT_TRUE(pods.count(pod)) << pod << " is not ready";
  EXPECT_LE(MaxOverMin(counts), 1.2);
}

// Asserted: each new pod answers a call within 1 s of the moment the API server's EndpointSlice
// first lists it ready (seen by a Python watch; the control plane watches the same API server),
// and all six pods answer within 3 s of `podlb sandbox scale` returning (pod start + readiness
// probe + slice update + xDS push).
TEST_F(SandboxXdsTest, ScaledUpPodsTakeCallsWithinOneSecondOfBeingReady) {
  std::set<std::string> before = Settle(3);
  auto watcher = StartWatch();

  Sandbox("scale", {"6"});
  auto scaled = Clock::now();
  std::map<std::string, Clock::time_point> first_seen;
  while (first_seen.size() < 6 && Clock::now() - scaled < std::chrono::seconds(5)) {
    std::string who = Call();
    ASSERT_NE(who, "");
    first_seen.emplace(who, Clock::now());
  }
  ASSERT_EQ(first_seen.size(), 6u);
  auto all_seen = std::max_element(first_seen.begin(), first_seen.end(), [](auto& a, auto& b) {
                    return a.second < b.second;
                  })->second;
  EXPECT_LT(all_seen - scaled, std::chrono::seconds(3))
      << std::chrono::duration_cast<milliseconds>(all_seen - scaled).count() << " ms";

  ExpectPromptFirstCalls(*watcher, first_seen, before, scaled);
}

// Asserted: during a rolling restart (maxSurge 1, grace period 1 s) a caller that does not wait
// for ready sees no failed call, and once the rollout is done only the new pods answer.
TEST_F(SandboxXdsTest, RollingRestartLosesNoCallAndEndsOnNewPods) {
  std::set<std::string> before = Settle(3);
  std::atomic<bool> stop{false};
  std::atomic<int> calls{0}, failures{0};
  std::thread caller([&] {
    while (!stop.load()) {
      if (Call(milliseconds(2000), /*wait_for_ready=*/false).empty()) ++failures;
      ++calls;
    }
  });
  Sandbox("restart");
  std::set<std::string> after = WaitReadyPods(3, before);
  // The last old pod has just turned unready; the push that drops it takes milliseconds.
  EXPECT_TRUE(WaitClientUses(after, 50));
  stop = true;
  caller.join();
  EXPECT_EQ(failures.load(), 0) << "of " << calls.load() << " calls";
  EXPECT_GT(calls.load(), 100);
  std::printf("%d calls during the rolling restart, %d failed\n", calls.load(), failures.load());

  std::map<std::string, int> counts;
  for (int i = 0; i < 200; ++i) counts[Call(milliseconds(2000), false)]++;
  for (const auto& [pod, n] : counts) {
    EXPECT_TRUE(after.count(pod)) << "\"" << pod << "\" answered " << n << " calls after the restart";
  }
  EXPECT_EQ(counts.size(), 3u);
}

// The same three with a second xDS client nobody here wrote: grpc-js-xds, from npm.
TEST_F(SandboxXdsTest, NodeSpreadsEvenlyOverThreePods) {
  if (!HaveNode()) GTEST_SKIP() << "node_modules/@grpc/grpc-js-xds missing: run scripts/bootstrap.sh";
  std::set<std::string> pods = Settle(3);
  std::string output;
  ASSERT_EQ(RunCommand({"node", SourceDir() + "/tests/xds/node/xds_client.js", "spread",
                        "greeter.default:50051", "300"},
                       &output, std::chrono::seconds(30),
                       {"GRPC_XDS_BOOTSTRAP_CONFIG=" + g_shared->bootstrap}),
            0)
      << output;
  json counts = json::parse(output.substr(std::min(output.rfind("\n{"), output.size())),
                            nullptr, false);
  if (counts.is_discarded() && output.starts_with("{")) counts = json::parse(output, nullptr, false);
  ASSERT_TRUE(counts.is_object()) << output;
  std::map<std::string, int> by_pod;
  for (const auto& [pod, n] : counts.items()) by_pod[pod] = n.get<int>();
  EXPECT_EQ(by_pod.count(""), 0u) << counts.dump();
  EXPECT_EQ(by_pod.size(), 3u) << counts.dump();
  for (const auto& [pod, n] : by_pod) EXPECT_TRUE(pods.count(pod)) << pod << " is not ready";
  EXPECT_LE(MaxOverMin(by_pod), 1.2) << counts.dump();
}

TEST_F(SandboxXdsTest, NodeScaledUpPodsTakeCallsWithinOneSecondOfBeingReady) {
  if (!HaveNode()) GTEST_SKIP() << "node_modules/@grpc/grpc-js-xds missing: run scripts/bootstrap.sh";
  std::set<std::string> before = Settle(3);
  auto watcher = StartWatch();
  auto node = StartNodeLoop(3);
  Sandbox("scale", {"6"});
  auto scaled = Clock::now();
  ASSERT_TRUE(node->WaitForLine(
      [count = 0](const std::string& l) mutable { return l.starts_with("first ") && ++count >= 6; },
      std::chrono::seconds(5)));
  auto first_seen = NodeFirstSeen(*node);
  ASSERT_EQ(first_seen.size(), 6u);
  for (const auto& [pod, seen] : first_seen) {
    if (!before.count(pod)) {
      EXPECT_LT(seen - scaled, std::chrono::seconds(3)) << pod;
    }
  }
  ExpectPromptFirstCalls(*watcher, first_seen, before, scaled);
  auto failures = NodeFailures(*node);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed calls, first: " << failures[0];
}

TEST_F(SandboxXdsTest, NodeRollingRestartLosesNoCallAndEndsOnNewPods) {
  if (!HaveNode()) GTEST_SKIP() << "node_modules/@grpc/grpc-js-xds missing: run scripts/bootstrap.sh";
  std::set<std::string> before = Settle(3);
  auto node = StartNodeLoop(3);
  Sandbox("restart");
  std::set<std::string> after = WaitReadyPods(3, before);
  // The C++ client using only the new pods means the control plane has pushed the last change.
  EXPECT_TRUE(WaitClientUses(after, 50));
  kill(node->pid(), SIGUSR2);
  ASSERT_TRUE(node->WaitForLineContaining("window ", kTimeout));
  json window;
  for (const std::string& line : node->Lines()) {
    if (line.starts_with("window ")) window = json::parse(line.substr(7), nullptr, false);
  }
  ASSERT_TRUE(window.is_object());
  for (const auto& [pod, n] : window.items()) {
    EXPECT_TRUE(after.count(pod)) << "\"" << pod << "\" answered " << n << " calls after the restart";
  }
  EXPECT_EQ(window.size(), 3u) << window.dump();
  auto failures = NodeFailures(*node);
  EXPECT_TRUE(failures.empty()) << failures.size() << " failed calls, first: " << failures[0];
}

}  // namespace
}  // namespace podlb::testing
