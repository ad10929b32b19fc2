// KubernetesSource: list + watch of discovery.k8s.io/v1 EndpointSlices and v1 Services in one
// namespace or in all of them — one watch per resource type, however many services — merged per
// Service and published into the Registry. Lists are read in pages (limit + continue) as
// client-go's reflector reads them. Runs one thread per resource type; Start/Stop from the
// control thread, HasSynced/Health from any thread.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/logging.h"
#include "core/registry.h"
#include "discovery/kubernetes/api_client.h"
#include "discovery/kubernetes/kube_config.h"
#include "discovery/kubernetes/service_state.h"
#include "discovery/source.h"

namespace podlb {

struct KubernetesSourceOptions {
  std::string ns = "default";
  // Every namespace instead of `ns` (which is then ignored): one cluster-wide list + watch per
  // resource type. Needs get/list/watch in all namespaces (a ClusterRoleBinding).
  bool all_namespaces = false;
  // Services to follow; empty: every Service of the namespace. Must be empty with
  // all_namespaces (which follows every Service).
  std::vector<std::string> services;
  // Objects per list page (the `limit` parameter); every page is requested with the previous
  // page's `continue` token until the last, so no response grows with the cluster.
  int list_page_size = 500;
  // The server ends each watch after a random time in [N, 2N) s, spreading re-watches of many
  // clients; podlb then resumes from the last resourceVersion (no relist).
  int watch_timeout_seconds = 300;
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(30)};
  // Uniform in [0, 1), for jitter. Null: a generator seeded from std::random_device.
  std::function<double()> random;
  ApiClientOptions client;
};

// Exponential backoff with jitter: each delay is the current base times [0.5, 1.5), capped at
// max; the base doubles per failure and Reset() restores it.
class Backoff {
 public:
  Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
          std::function<double()> random);
  std::chrono::milliseconds Next();
  void Reset() { base_ = initial_; }

 private:
  std::chrono::milliseconds initial_, max_, base_;
  std::function<double()> random_;
};

class KubernetesSource : public EndpointSource {
 public:
  KubernetesSource(KubeConfig config, KubernetesSourceOptions options, Registry& registry);
  ~KubernetesSource() override;

  // Fails on configuration errors (no server, unreadable CA file).
  absl::Status Start() override;
  void Stop() override;
  bool HasSynced() const override;
  absl::Status Health() const override;
  std::string Name() const override { return "kubernetes"; }

 private:
  enum Kind { kSlices = 0, kServices = 1 };
  // A Service by namespace and name (the namespace matters across all namespaces).
  using ServiceId = std::pair<std::string, std::string>;
  struct Resource {
    std::string plural;        // "endpointslices"
    std::string path;          // collection path without query
    std::string selector;      // labelSelector query value, or ""
    std::string rbac;          // "discovery.k8s.io/endpointslices"
  };

  void Run(Kind kind);
  // One list, page by page, applied as a whole once the last page is in (vanished objects
  // removed); any failure leaves the published state untouched. Sets *rv to the list's version.
  // A continue token expired mid-list is OutOfRange (410), like an expired watch: relist.
  absl::Status ListOnce(Kind kind, std::string* rv);
  // One watch from *rv until the stream ends; *rv follows events and bookmarks.
  absl::Status WatchOnce(Kind kind, std::string* rv);
  absl::Status ApplyList(Kind kind, std::vector<nlohmann::json> items);
  absl::Status ApplyEvent(Kind kind, const std::string& type, const nlohmann::json& object);
  bool Wanted(const std::string& service_name) const;
  // The Service an object belongs to: its own namespace across all namespaces, else ours.
  absl::StatusOr<ServiceId> IdOf(const std::string& object_ns,
                                 const std::string& service_name) const;
  ServiceState& StateLocked(const ServiceId& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_);
  void PublishLocked(const ServiceId& id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_mu_);
  // Maps an HTTP answer other than 200 to a Status whose message says what to do.
  absl::Status HttpError(Kind kind, const char* verb, const HttpResponse& response) const;
  void ReportFailure(Kind kind, const absl::Status& status);
  // Health OK; the failure log is cleared unless the last failure was bad data and `proven`
  // is false (see ReportFailure).
  void ReportHealthy(Kind kind, bool proven);
  // Waits `delay` or until Stop(); false if stopping.
  bool Sleep(std::chrono::milliseconds delay);
  double Random();

  const KubeConfig config_;
  KubernetesSourceOptions options_;
  Registry& registry_;
  std::set<std::string> wanted_;
  // `in "default"` or `in all namespaces`, for messages.
  std::string scope_;
  std::array<Resource, 2> resources_;
  std::unique_ptr<ApiClient> client_;
  std::array<LogOnChange, 2> failure_log_{LogOnChange(LogLevel::kWarn),
                                          LogOnChange(LogLevel::kWarn)};
  std::atomic<bool> cancel_{false};
  // Per kind; touched only by that kind's thread.
  std::array<bool, 2> bad_data_{false, false};
  std::vector<std::thread> threads_;

  absl::Mutex random_mu_;
  std::function<double()> random_ ABSL_GUARDED_BY(random_mu_);

  // Merged state, touched by both reflector threads. Registry publication happens under it, so
  // a registry subscriber must not call back into this source's state (it cannot: no accessor).
  absl::Mutex state_mu_;
  std::map<ServiceId, ServiceState> services_ ABSL_GUARDED_BY(state_mu_);
  bool slices_listed_ ABSL_GUARDED_BY(state_mu_) = false;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::array<bool, 2> synced_ ABSL_GUARDED_BY(mu_) = {false, false};
  std::array<absl::Status, 2> health_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb
