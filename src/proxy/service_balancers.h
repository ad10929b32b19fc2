// ServiceBalancers: the proxy's balancing state per Service, one per process and shared by every
// worker (balancing::Balancer with its per-endpoint stats, the retry budget, the golden-signal
// metrics), so all workers see one pod's latency, failures and ejection alike. Entries are made
// on first use (any worker thread; mutex, cold path) and follow the Registry from then on
// (the discovery thread). Data-path reads are lock-free.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "balancing/balancer.h"
#include "balancing/call_metrics.h"
#include "balancing/retry_budget.h"
#include "core/registry.h"

namespace podlb::proxy {

struct ServiceBalancing {
  ServiceKey key;
  std::string key_text;
  EndpointSlotConstSharedPtr slot;  // to tell "unknown to discovery" from "no endpoints"
  std::shared_ptr<balancing::Balancer> balancer;
  balancing::RetryBudget retry_budget;
  balancing::CallMetrics metrics;
  std::atomic<uint64_t> retries_refused{0};      // transparent: the pod never saw the call
  std::atomic<uint64_t> retries_unavailable{0};  // podlb.io/retry-on-unavailable, budgeted
  // Last: unsubscribes first, so no update reaches a half-destroyed entry.
  std::unique_ptr<Subscription> subscription;
};

class ServiceBalancers {
 public:
  // `options`: the proxy's defaults and zone, copied into every Service's Balancer.
  ServiceBalancers(Registry& registry, balancing::BalancerOptions options);

  std::shared_ptr<ServiceBalancing> ForKey(const ServiceKey& key);
  // Lets go of the state of Services discovery no longer knows (deleted) that no worker uses
  // any more. Any thread; cold path (the workers' once-a-second tick).
  void Sweep();
  // Prometheus text: per Service the call duration histogram by status class, calls by
  // grpc_status, retries and budget; per endpoint the balancer's view.
  std::string RenderMetrics() const;

 private:
  Registry& registry_;
  const balancing::BalancerOptions options_;
  mutable absl::Mutex mu_;
  std::map<ServiceKey, std::shared_ptr<ServiceBalancing>> services_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb::proxy
