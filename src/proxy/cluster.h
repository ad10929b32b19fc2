// Cluster: one worker's view of one Service — its upstream hosts with their HTTP/2 sessions —
// over the Service's process-wide balancing state (ServiceBalancing: the shared Balancer, its
// per-endpoint stats and ejections, the retry budget). Picks go to the shared Balancer's
// snapshot; a new endpoint table rebuilds this worker's host list, keeping hosts (and their
// connections) that stayed and retiring the ones that left. Owned and used by one worker thread.
#pragma once

#include <sys/socket.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "balancing/balancer.h"
#include "h2/event_loop.h"
#include "proxy/header_block.h"
#include "proxy/proxy_options.h"
#include "proxy/proxy_stats.h"
#include "proxy/service_balancers.h"
#include "proxy/upstream_context.h"

namespace podlb::proxy {

using h2::Clock;

class HealthChecker;
class UpstreamSession;

struct UpstreamHost {
  Endpoint endpoint;
  std::string host_port;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  // The endpoint's shared balancing stats (all workers record into them).
  std::shared_ptr<balancing::EndpointStats> balance;
  uint32_t index = balancing::kNoEndpoint;  // in the current endpoint table
  bool removed = false;   // gone from the table: no new streams, close when idle
  uint32_t outstanding = 0;  // this worker's streams on it (retired hosts wait for zero)
  bool health_check_failed = false;  // last active grpc.health.v1 probe said not SERVING
  std::string last_error;  // why the last connection to it failed or was lost, for call errors
  std::vector<std::unique_ptr<UpstreamSession>> sessions;
  std::shared_ptr<HostStats> stats;
};

class Cluster {
 public:
  // `context` outlives the cluster.
  Cluster(std::shared_ptr<ServiceBalancing> service, const UpstreamContext& context);
  ~Cluster();

  const ServiceKey& key() const { return service_->key; }
  ServiceBalancing& service() { return *service_; }
  // nullptr when no endpoint can take a stream; `error` then says why. `exclude`: a retry's
  // previous host, chosen again only if nothing else is left.
  UpstreamHost* Pick(const HeaderBlock& request_headers, const UpstreamHost* exclude,
                     std::string* error);
  // The worker loop's clock (read once per loop turn) on the balancing core's time base.
  int64_t NowNanos() const;
  // The Service's policy as of the last pick.
  const balancing::ServicePolicy& policy() const { return snapshot_->policy; }
  // A session with room for one more stream (opening one if needed), or nullptr.
  UpstreamSession* SessionFor(UpstreamHost* host);
  // A call attempt starts on `host` / ended with a result (`failure` per the balancing core's
  // rules; `latency`: to the response headers, or to the failure).
  void AttemptStarted(UpstreamHost* host);
  void AttemptFinished(UpstreamHost* host, bool failure, int64_t latency_nanos);
  void AttemptAbandoned(UpstreamHost* host);
  // A connection to `host` could not be made: a failure for its outlier record.
  void ReportConnectFailure(UpstreamHost* host);
  // Closes sessions of removed hosts once idle and frees hosts with no sessions left.
  void Sweep();
  // A stream routed here holds the Cluster until it ends (ProxyStream).
  void StreamAttached() { ++streams_; }
  void StreamDetached() { --streams_; }
  // Takes the Service's current endpoints, sweeps, and says whether nothing refers to this
  // Cluster any more (no host, retired or not, and no stream): the Worker may then free it.
  bool RefreshAndCheckIdle();
  // Every host's state, for /debug/endpoints (worker thread).
  std::string Describe();
  std::vector<UpstreamHost*> Hosts();

 private:
  void Refresh();
  void Resync(const balancing::EndpointTableConstSharedPtr& table);

  const std::shared_ptr<ServiceBalancing> service_;
  const UpstreamContext& context_;
  balancing::BalancerSnapshotConstSharedPtr snapshot_;
  balancing::EndpointTableConstSharedPtr table_;
  std::map<std::string, std::unique_ptr<UpstreamHost>, std::less<>> hosts_;  // by host:port
  std::vector<UpstreamHost*> by_index_;  // table_'s order
  std::vector<std::unique_ptr<UpstreamHost>> retired_;
  std::unique_ptr<HealthChecker> health_checker_;  // when active checks are on
  uint32_t streams_ = 0;  // ProxyStreams routed here and not yet destroyed
};

}  // namespace podlb::proxy
