#include "support/sandbox_cluster.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <climits>
#include <cstdio>
#include <sstream>
#include <thread>

#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace podlb::testing {
namespace {

using json = nlohmann::json;
using std::chrono::milliseconds;

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

long long Ms(std::chrono::steady_clock::duration d) {
  return static_cast<long long>(std::chrono::duration_cast<milliseconds>(d).count());
}

}  // namespace

double MaxOverMin(const std::map<std::string, int>& counts) {
  int lo = INT_MAX, hi = 0;
  for (const auto& [name, n] : counts) {
    lo = std::min(lo, n);
    hi = std::max(hi, n);
  }
  return lo == 0 ? 1e9 : static_cast<double>(hi) / lo;
}

SandboxCluster::SandboxCluster(int octet, int replicas) {
  sandbox_ = std::make_unique<ChildProcess>(std::vector<std::string>{
      PodlbBinary(), "sandbox", "--state-dir", dir_.path(), "--pod-port",
      std::to_string(PickFreePort()), "--grace-period", "1", "--replicas",
      std::to_string(replicas), "--first-pod-ip",
      "127." + std::to_string(octet) + "." + std::to_string(getpid() % 250 + 1) + ".2",
      // ClusterIPs of its own too: sandboxes of concurrent tests must not listen on one address.
      "--service-cidr",
      "127." + std::to_string(octet + 100) + "." + std::to_string(getpid() % 250 + 1) + ".0/24"});
  started_ = sandbox_->WaitForLine([](const std::string& l) { return l == "ready"; }, kTimeout);
  EXPECT_TRUE(started_) << "podlb sandbox did not print \"ready\"";
}

void SandboxCluster::Stop() {
  if (sandbox_ != nullptr) sandbox_->Terminate();
}

::testing::AssertionResult SandboxCluster::Run(const std::string& verb,
                                               const std::vector<std::string>& extra) const {
  std::vector<std::string> argv = {PodlbBinary(), "sandbox", verb, "--state-dir", dir(),
                                   "default/greeter"};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string out;
  if (RunCommand(argv, &out) != 0) {
    return ::testing::AssertionFailure() << "podlb sandbox " << verb << ": " << out;
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SandboxCluster::DeletePod(const std::string& pod) const {
  std::string out;
  if (RunCommand({"kubectl", "--kubeconfig", kubeconfig(), "delete", "pod", pod, "--wait=false"},
                 &out) != 0) {
    return ::testing::AssertionFailure() << "kubectl delete pod " << pod << ": " << out;
  }
  return ::testing::AssertionSuccess();
}

std::map<std::string, std::string> SandboxCluster::PodIps() const {
  std::string out;
  std::map<std::string, std::string> ips;
  if (RunCommand({"kubectl", "--kubeconfig", kubeconfig(), "get", "pods", "-l", "app=greeter",
                  "-o", "json"},
                 &out) != 0) {
    return ips;
  }
  json list = json::parse(out.substr(std::min(out.find('{'), out.size())), nullptr, false);
  if (list.is_discarded()) return ips;
  for (const auto& pod : list.value("items", json::array())) {
    std::string name = pod.value("metadata", json::object()).value("name", "");
    std::string ip = pod.value("status", json::object()).value("podIP", "");
    if (!name.empty() && !ip.empty()) ips[name] = ip;
  }
  return ips;
}

std::map<std::string, bool> SandboxCluster::KubectlEndpoints() const {
  std::string out;
  std::map<std::string, bool> eps;
  if (RunCommand({"kubectl", "--kubeconfig", kubeconfig(), "get", "endpointslices", "-l",
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

std::set<std::string> SandboxCluster::WaitReadyPods(size_t n,
                                                    const std::set<std::string>& exclude) const {
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

::testing::AssertionResult SandboxCluster::WaitClientUses(const CallFn& call,
                                                          const std::set<std::string>& pods,
                                                          int window) {
  std::set<std::string> seen;
  int streak = 0;
  std::string last;
  auto deadline = Clock::now() + kTimeout;
  while (Clock::now() < deadline) {
    last = call(milliseconds(5000), true);
    if (last.empty() || !pods.count(last)) {
      streak = 0;
      seen.clear();
      continue;
    }
    seen.insert(last);
    if (++streak >= window && seen == pods) return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "the client never called exactly the " << pods.size()
                                       << " ready pods; last answer from \"" << last << "\"";
}

std::set<std::string> SandboxCluster::Settle(const CallFn& call, size_t n) const {
  EXPECT_TRUE(Run("scale", {std::to_string(n)}));
  std::set<std::string> pods = WaitReadyPods(n);
  EXPECT_TRUE(WaitClientUses(call, pods));
  return pods;
}

std::unique_ptr<ChildProcess> SandboxCluster::StartReadyWatch() const {
  WriteFile(dir() + "/watch.py", kWatchScript);
  auto watch = std::make_unique<ChildProcess>(
      std::vector<std::string>{"/usr/bin/python3", dir() + "/watch.py", kubeconfig()});
  EXPECT_TRUE(watch->WaitForLineContaining(" ADDED ", kTimeout));
  return watch;
}

std::map<std::string, SandboxCluster::Clock::time_point> SandboxCluster::ReadyTimes(
    const ChildProcess& watch) {
  std::map<std::string, Clock::time_point> ready_at;
  for (const std::string& line : watch.Lines()) {
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

void SandboxCluster::ExpectPromptFirstCalls(
    const ChildProcess& watch, const std::map<std::string, Clock::time_point>& first_seen,
    const std::set<std::string>& before, Clock::time_point scaled) {
  std::map<std::string, Clock::time_point> ready_at;
  ASSERT_TRUE(WaitFor(
      [&] {
        ready_at = ReadyTimes(watch);
        return ready_at.size() >= first_seen.size();
      },
      kTimeout, "the watch listing every pod ready"));
  for (const auto& [pod, seen] : first_seen) {
    if (before.count(pod)) continue;
    ASSERT_TRUE(ready_at.count(pod)) << pod << " answered but was never listed ready";
    auto lag = seen - ready_at[pod];
    EXPECT_LE(lag, milliseconds(1000)) << pod;
    std::printf("%s: ready at %+lld ms after the scale, first call at %+lld ms (lag %lld ms)\n",
                pod.c_str(), Ms(ready_at[pod] - scaled), Ms(seen - scaled), Ms(lag));
  }
}

void SandboxCluster::ExpectEvenSpreadOverThreePods(const CallFn& call) const {
  std::set<std::string> pods = Settle(call, 3);
  std::map<std::string, int> counts;
  for (int i = 0; i < 300; ++i) counts[call(milliseconds(5000), true)]++;
  EXPECT_EQ(counts.count(""), 0u) << "failed calls: " << counts[""];
  EXPECT_EQ(counts.size(), 3u) << ::testing::PrintToString(counts);
  for (const auto& [pod, n] : counts) EXPECT_TRUE(pods.count(pod)) << pod << " is not ready";
  EXPECT_LE(MaxOverMin(counts), 1.2) << ::testing::PrintToString(counts);
}

// Asserted: each new pod answers a call within 1 s of the moment the API server's EndpointSlice
// first lists it ready (seen by a Python watch on the same API server the strategy watches), and
// all six answer within 3 s of `podlb sandbox scale` returning (pod start + readiness probe +
// slice update + propagation).
void SandboxCluster::ExpectScaledUpPodsTakeCallsPromptly(const CallFn& call) const {
  std::set<std::string> before = Settle(call, 3);
  auto watch = StartReadyWatch();
  ASSERT_TRUE(Run("scale", {"6"}));
  auto scaled = Clock::now();
  std::map<std::string, Clock::time_point> first_seen;
  while (first_seen.size() < 6 && Clock::now() - scaled < std::chrono::seconds(5)) {
    std::string who = call(milliseconds(5000), true);
    ASSERT_NE(who, "");
    first_seen.emplace(who, Clock::now());
  }
  ASSERT_EQ(first_seen.size(), 6u);
  auto all_seen = std::max_element(first_seen.begin(), first_seen.end(), [](auto& a, auto& b) {
                    return a.second < b.second;
                  })->second;
  EXPECT_LT(all_seen - scaled, std::chrono::seconds(3)) << Ms(all_seen - scaled) << " ms";
  ExpectPromptFirstCalls(*watch, first_seen, before, scaled);
}

void SandboxCluster::ExpectRollingRestartLosesNoCall(const CallFn& call) const {
  std::set<std::string> before = Settle(call, 3);
  std::atomic<bool> stop{false};
  std::atomic<int> calls{0}, failures{0};
  std::thread caller([&] {
    while (!stop.load()) {
      if (call(milliseconds(2000), /*wait_for_ready=*/false).empty()) ++failures;
      ++calls;
    }
  });
  EXPECT_TRUE(Run("restart"));
  std::set<std::string> after = WaitReadyPods(3, before);
  // The last old pod has just turned unready; dropping it takes milliseconds.
  EXPECT_TRUE(WaitClientUses(call, after, 50));
  stop = true;
  caller.join();
  EXPECT_EQ(failures.load(), 0) << "of " << calls.load() << " calls";
  EXPECT_GT(calls.load(), 100);
  std::printf("%d calls during the rolling restart, %d failed\n", calls.load(), failures.load());

  std::map<std::string, int> counts;
  for (int i = 0; i < 200; ++i) counts[call(milliseconds(2000), false)]++;
  for (const auto& [pod, n] : counts) {
    EXPECT_TRUE(after.count(pod)) << "\"" << pod << "\" answered " << n << " calls after the restart";
  }
  EXPECT_EQ(counts.size(), 3u);
}

::testing::AssertionResult SandboxCluster::Fault(const std::string& pod,
                                                 const std::vector<std::string>& extra) const {
  std::vector<std::string> argv = {PodlbBinary(), "sandbox", "fault", "--state-dir", dir(),
                                   "default/" + pod};
  argv.insert(argv.end(), extra.begin(), extra.end());
  std::string out;
  if (RunCommand(argv, &out) != 0) {
    return ::testing::AssertionFailure() << "podlb sandbox fault " << pod << ": " << out;
  }
  return ::testing::AssertionSuccess();
}

namespace {

// The first of `pods` by name: the one the fault contract makes bad.
std::string FirstPod(const std::set<std::string>& pods) {
  return pods.empty() ? std::string() : *pods.begin();
}

}  // namespace

void SandboxCluster::ExpectSlowPodShed(const CallFn& call) const {
  std::set<std::string> pods = Settle(call, 3);
  const std::string bad = FirstPod(pods);
  // 250 ms: ten times what a loaded 2-core machine adds to a good pod's answer (up to ~25 ms
  // seen under a parallel ctest run), so peak EWMA's choice does not hinge on the machine's load.
  ASSERT_TRUE(Fault(bad, {"--delay", "250ms"}));
  // Let the fault land (the controller applies it within a second) and the balancer see it:
  // calls until one is answered slowly by the bad pod, each call being the event waited for.
  auto deadline = Clock::now() + kTimeout;
  bool seen_slow = false;
  while (!seen_slow && Clock::now() < deadline) {
    auto start = Clock::now();
    std::string pod = call(milliseconds(5000), true);
    seen_slow = pod == bad && Clock::now() - start >= milliseconds(200);
  }
  ASSERT_TRUE(seen_slow) << bad << " never answered slowly";
  std::map<std::string, int> counts;
  for (int i = 0; i < 300; ++i) counts[call(milliseconds(5000), true)]++;
  EXPECT_EQ(counts.count(""), 0u) << "failed calls: " << counts[""];
  EXPECT_LE(counts[bad], 15) << ::testing::PrintToString(counts);
  ASSERT_TRUE(Fault(bad, {"--clear"}));
}

void SandboxCluster::ExpectFailingPodShed(const CallFn& call) const {
  std::set<std::string> pods = Settle(call, 3);
  const std::string bad = FirstPod(pods);
  ASSERT_TRUE(Fault(bad, {"--error-rate", "1", "--error-code", "UNAVAILABLE"}));
  // Until the first failure shows the fault has landed.
  auto deadline = Clock::now() + kTimeout;
  int failed = 0;
  while (failed == 0 && Clock::now() < deadline) failed += call(milliseconds(5000), true).empty();
  ASSERT_EQ(failed, 1) << "the fault never showed";
  std::vector<std::string> answers;
  for (int i = 0; i < 300; ++i) answers.push_back(call(milliseconds(5000), true));
  int total_failed = 0, late_failed = 0;
  for (size_t i = 0; i < answers.size(); ++i) {
    total_failed += answers[i].empty();
    if (i >= 100) late_failed += answers[i].empty();
    EXPECT_NE(answers[i], bad);
  }
  EXPECT_LE(total_failed, 5);
  EXPECT_EQ(late_failed, 0);
  ASSERT_TRUE(Fault(bad, {"--clear"}));
}

void SandboxCluster::ExpectStuckPodShed(const CallFn& call) const {
  std::set<std::string> pods = Settle(call, 3);
  const std::string bad = FirstPod(pods);
  ASSERT_TRUE(Fault(bad, {"--stuck"}));
  auto deadline = Clock::now() + kTimeout;
  int failed = 0;
  while (failed == 0 && Clock::now() < deadline) failed += call(milliseconds(1000), true).empty();
  ASSERT_EQ(failed, 1) << "the fault never showed";
  std::vector<std::string> answers;
  for (int i = 0; i < 100; ++i) answers.push_back(call(milliseconds(1000), true));
  int total_failed = 0, late_failed = 0;
  for (size_t i = 0; i < answers.size(); ++i) {
    total_failed += answers[i].empty();
    if (i >= 10) late_failed += answers[i].empty();
  }
  EXPECT_LE(total_failed, 2);
  EXPECT_EQ(late_failed, 0);
  ASSERT_TRUE(Fault(bad, {"--clear"}));
}

}  // namespace podlb::testing
