// Balancer: one Service's balancing state in one process, shared by every thread that sends it
// calls (all proxy workers; all threads of a library channel). It turns each EndpointSet plus
// the Service's ServicePolicy into an immutable BalancerSnapshot (the endpoint table, the layers
// every policy gets — draining, outlier ejection, zone preference with a panic threshold — and
// the policy's Picker) and swaps it in atomically.
//
// Threads: Update() on the discovery thread; Current(), RecordCall*() from any thread without
// blocking (a snapshot whose ejection ended is rebuilt by whichever caller notices, under a
// try-lock; ejecting takes the lock, on the failure path only).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "balancing/endpoint_stats.h"
#include "balancing/picker.h"
#include "balancing/service_policy.h"
#include "balancing/subset.h"
#include "core/endpoint.h"

namespace podlb::balancing {

struct BalancedEndpoint {
  Endpoint endpoint;
  std::string host_port;
  bool draining = false;  // terminating but serving: keeps its calls, takes no new ones
  // Subsetting: this endpoint's share of the client's calls (ChooseWeightedSubset), which
  // scales its weight; unset without subsetting.
  std::optional<double> subset_share;
  std::shared_ptr<EndpointStats> stats;
  // The adapter's object for this endpoint (the library's per-pod channel), kept while the pod
  // stays; null for adapters that keep their own (the proxy's workers).
  std::shared_ptr<const void> attachment;
};

// The endpoints of one EndpointSet version, in the set's order (excluded ones left out; with
// subsetting, only this client's subset and its members that are now draining).
struct EndpointTable {
  uint64_t version = 0;  // the EndpointSet's version
  std::vector<BalancedEndpoint> endpoints;
  // The Service's eligible endpoints, of which `endpoints` is a subset when `subset` is set.
  size_t service_eligible = 0;
  bool subset = false;
};
using EndpointTableConstSharedPtr = std::shared_ptr<const EndpointTable>;

// What a pick reads: immutable.
struct BalancerSnapshot {
  EndpointTableConstSharedPtr table;
  ServicePolicy policy;
  std::vector<Candidate> candidates;  // what the picker chooses from
  std::unique_ptr<Picker> picker;     // null when there is no candidate
  // The earliest time a current ejection ends: the snapshot is rebuilt when a caller sees it.
  int64_t refresh_at_nanos = INT64_MAX;
  size_t ejected = 0;
  // How the candidates were chosen, for /debug and logs: "all", "local zone a", "all zones
  // (panic: 1 of 3 local endpoints healthy)", "every endpoint ejected: all".
  std::string mode;

  // A table index, or kNoEndpoint when no endpoint can take a call.
  uint32_t Pick(const PickArgs& args) const {
    return picker ? picker->Pick(args) : kNoEndpoint;
  }
  const BalancedEndpoint& at(uint32_t index) const { return table->endpoints[index]; }
};
using BalancerSnapshotConstSharedPtr = std::shared_ptr<const BalancerSnapshot>;

struct BalancerOptions {
  // The remedy's defaults; the Service's annotations override them.
  ServicePolicy defaults = DataPathDefaults();
  std::string local_zone;  // the caller's zone, for zone-aware Services
  const PolicyRegistry* policies = nullptr;  // null: BuiltinPolicies()
  std::string log_prefix = "podlb";          // "podlb proxy", "podlb client"
  // Who this client is among the Service's clients, for subsetting (ServicePolicy::subset_size):
  // the pod name by default (the remedy fills it in). See balancing/subset.h.
  std::string client_id;
  // Makes the adapter's attachment for an endpoint (`entry` has its stats set); `previous` is
  // the one the same host:port had in the last table (or null), to keep when it still fits
  // `policy`. Called on the Update() thread.
  std::function<std::shared_ptr<const void>(const BalancedEndpoint& entry,
                                            const ServicePolicy& policy,
                                            const std::shared_ptr<const void>& previous)>
      attach;
};

// Per-endpoint figures for /metrics and /debug (any thread).
struct EndpointView {
  std::string host_port;
  std::string pod_name;
  std::string zone;
  bool draining = false;
  bool ejected = false;
  int64_t in_flight = 0;
  double rtt_estimate_ms = 0;
  uint64_t calls = 0;
  uint64_t failures = 0;
  uint64_t ejections = 0;
};

class Balancer {
 public:
  Balancer(ServiceKey key, BalancerOptions options);
  Balancer(const Balancer&) = delete;
  Balancer& operator=(const Balancer&) = delete;

  // Applies a new endpoint set (null: the Service has no endpoints). Stats of endpoints that
  // stay carry over; new ones start at the average latency of their peers.
  void Update(const EndpointSetConstSharedPtr& set, int64_t now_nanos);

  // The snapshot to pick from (rebuilt first if an ejection has ended). Never null.
  BalancerSnapshotConstSharedPtr Current(int64_t now_nanos);

  // A call finished on `stats` (an endpoint of this balancer). `failure` per IsEndpointFailure
  // or a transport failure. May eject the endpoint.
  void RecordCall(EndpointStats& stats, bool failure, int64_t latency_nanos, int64_t now_nanos) {
    const uint32_t consecutive = stats.CallFinished(failure, latency_nanos, now_nanos);
    if (failure) OnFailure(stats, consecutive, now_nanos);
  }
  // The second half of RecordCall, for adapters that record into EndpointStats themselves and
  // reach the Balancer only when a call failed (the library's per-call hook holds the stats).
  void OnFailure(EndpointStats& stats, uint32_t consecutive_failures, int64_t now_nanos);

  const ServiceKey& key() const { return key_; }
  std::vector<EndpointView> Describe(int64_t now_nanos) const;
  uint64_t ejections_total() const { return ejections_total_.load(std::memory_order_relaxed); }

 private:
  void RebuildLocked(int64_t now_nanos) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The endpoints of `set` this client takes calls to: every one that is not excluded, or with
  // subsetting its subset of the eligible ones plus the draining ones `previous` still holds.
  // Per endpoint of `set`: nullopt if not in the table, else its subset share (1 without
  // subsetting, 0 for a draining member kept until it is gone).
  std::vector<std::optional<double>> Members(const EndpointSet& set,
                            const std::map<std::string_view, const BalancedEndpoint*>& previous) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const ServiceKey key_;
  const BalancerOptions options_;
  const SubsetClient subset_client_;
  const PolicyRegistry& policies_;

  mutable absl::Mutex mu_;
  EndpointTableConstSharedPtr table_ ABSL_GUARDED_BY(mu_);
  ServicePolicy policy_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> logged_problems_ ABSL_GUARDED_BY(mu_);
  std::string logged_mode_ ABSL_GUARDED_BY(mu_);

  std::atomic<BalancerSnapshotConstSharedPtr> current_;
  std::atomic<uint64_t> ejections_total_{0};
};
using BalancerSharedPtr = std::shared_ptr<Balancer>;

// Nanoseconds on the monotonic clock, the time base of every balancing figure.
int64_t MonotonicNanos();

}  // namespace podlb::balancing
