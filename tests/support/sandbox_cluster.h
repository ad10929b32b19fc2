// A `podlb sandbox` cluster for end-to-end tests: the API-server stand-in, its controllers and
// real gRPC pods in a child process, driven the way an operator would (`podlb sandbox
// scale|restart`, kubectl, the official Python client's watch). Shared by the xDS, proxy and
// client-library tests so each proves the same promises against the same cluster. Test thread
// only. The sandbox itself is the one src/demo's MakeSandboxCluster runs in-process
// (sandbox::Sandbox, changed through sandbox::SandboxClient): here it runs as `podlb sandbox`,
// whose verbs call that same client, so the proxy tests (and their sanitizer build) need not
// link the sandbox, and every change goes through the CLI an operator uses.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "support/process.h"

namespace podlb::testing {

class SandboxCluster {
 public:
  using Clock = std::chrono::steady_clock;
  // One unary call through the strategy under test: the name of the pod that answered, or ""
  // on failure.
  using CallFn = std::function<std::string(std::chrono::milliseconds timeout, bool wait_for_ready)>;
  static constexpr std::chrono::seconds kTimeout{20};

  // Starts the sandbox with its `greeter` Deployment (3 pods, Service port 50051 named "grpc")
  // on 127.`octet`.<pid-derived>.2 and up, so concurrent test binaries never share addresses.
  // Check started() before use.
  // `replicas` other than 3 is for scale tests (pods start at ~10 ms each; "ready" is printed
  // once the API server listens, before they are all up).
  explicit SandboxCluster(int octet, int replicas = 3);

  bool started() const { return started_; }
  // Stops `podlb sandbox` (its API server and pods), as an API server that went away looks to
  // the processes that follow it; the state directory stays.
  void Stop();
  const std::string& dir() const { return dir_.path(); }
  std::string kubeconfig() const { return dir_.path() + "/kubeconfig"; }

  // `podlb sandbox VERB --state-dir DIR default/greeter EXTRA...`, e.g. Run("scale", {"6"}).
  ::testing::AssertionResult Run(const std::string& verb,
                                 const std::vector<std::string>& extra = {}) const;
  // `kubectl delete pod NAME`: the Deployment replaces it.
  ::testing::AssertionResult DeletePod(const std::string& pod) const;

  // kubectl's view of the greeter's pods: name -> pod IP.
  std::map<std::string, std::string> PodIps() const;
  // kubectl's view: every endpoint of the greeter (pod name -> ready).
  std::map<std::string, bool> KubectlEndpoints() const;
  // Waits until kubectl lists exactly `n` endpoints, all ready, none in `exclude`.
  std::set<std::string> WaitReadyPods(size_t n, const std::set<std::string>& exclude = {}) const;

  // Calls back to back until `window` consecutive calls all succeed on `pods` and every one of
  // them answered (each call is the event waited for, not a poll).
  static ::testing::AssertionResult WaitClientUses(const CallFn& call,
                                                   const std::set<std::string>& pods,
                                                   int window = 60);
  // Scales to `n` ready pods and waits until the client uses exactly them.
  std::set<std::string> Settle(const CallFn& call, size_t n) const;

  // A Python-client watch on the greeter's EndpointSlices, past its initial list; its lines
  // carry CLOCK_MONOTONIC times (std::chrono::steady_clock's clock) of each event.
  std::unique_ptr<ChildProcess> StartReadyWatch() const;
  // When the watch first listed each pod ready.
  static std::map<std::string, Clock::time_point> ReadyTimes(const ChildProcess& watch);
  // Expects each pod of `first_seen` not in `before` to have answered within 1 s of being
  // listed ready; prints each lag.
  static void ExpectPromptFirstCalls(const ChildProcess& watch,
                                     const std::map<std::string, Clock::time_point>& first_seen,
                                     const std::set<std::string>& before, Clock::time_point scaled);

  // The promises every strategy makes, asserted the same way for each.
  // 300 calls over 3 ready pods: all succeed, max/min share <= 1.2.
  void ExpectEvenSpreadOverThreePods(const CallFn& call) const;
  // Scale 3 -> 6: every new pod answers within 1 s of being listed ready, all six within 3 s.
  void ExpectScaledUpPodsTakeCallsPromptly(const CallFn& call) const;
  // Rolling restart under a caller that does not wait for ready: no failed call, and afterwards
  // only the new pods answer.
  void ExpectRollingRestartLosesNoCall(const CallFn& call) const;

  // `podlb sandbox fault --state-dir DIR default/POD EXTRA...`; "--clear" heals.
  ::testing::AssertionResult Fault(const std::string& pod,
                                   const std::vector<std::string>& extra) const;
  // The pods that are up but bad (the latency-aware remedies: the proxy and the library with
  // their default policy). One pod of three +25 ms per call: after the first slow answers, at
  // most 5 % of 300 calls go to it, and all succeed.
  void ExpectSlowPodShed(const CallFn& call) const;
  // One pod answering every call UNAVAILABLE: at most 5 of 300 calls fail, none of the last 200.
  void ExpectFailingPodShed(const CallFn& call) const;
  // One pod that stops answering (calls with a 1 s deadline): at most 3 of 100 calls fail (the
  // ones it held), none of the last 90.
  void ExpectStuckPodShed(const CallFn& call) const;

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> sandbox_;
  bool started_ = false;
};

double MaxOverMin(const std::map<std::string, int>& counts);

}  // namespace podlb::testing
