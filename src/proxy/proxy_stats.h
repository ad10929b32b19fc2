// Counters shared by all workers, rendered by the admin /metrics handler. Workers look up a
// HostStats once per upstream host (mutex, cold path) and then bump relaxed atomics; the admin
// thread reads them. Any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"

namespace podlb::proxy {

struct HostStats {
  std::string service;
  std::string address;  // host:port
  std::atomic<uint64_t> requests{0};
  std::atomic<int64_t> active_streams{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> connections{0};
};

class ProxyStats {
 public:
  std::shared_ptr<HostStats> ForHost(const std::string& service, const std::string& address);
  // Prometheus text format. Entries of hosts no worker uses any more (a pod that left) are
  // dropped here and in ForHost, so pods that come and go leave no series behind.
  std::string Render() const;

  std::atomic<uint64_t> downstream_connections_total{0};
  std::atomic<int64_t> downstream_connections_active{0};
  std::atomic<uint64_t> downstream_streams_total{0};
  std::atomic<uint64_t> local_replies_total{0};
  std::atomic<uint64_t> deadline_exceeded_total{0};
  std::atomic<uint64_t> flood_goaways_total{0};
  std::atomic<uint64_t> header_limit_resets_total{0};
  std::atomic<uint64_t> idle_closes_total{0};
  std::atomic<int64_t> clusters{0};  // per-worker Service clusters, summed over workers

 private:
  mutable absl::Mutex mu_;
  void PruneLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  mutable std::map<std::pair<std::string, std::string>, std::shared_ptr<HostStats>> hosts_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb::proxy
