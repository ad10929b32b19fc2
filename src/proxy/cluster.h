// Cluster: one worker's view of one service — its upstream hosts (with their HTTP/2 sessions),
// the per-stream picker (power of two choices on outstanding streams, round robin, or ring hash
// on a header, with zone preference) and passive outlier ejection. The endpoint snapshot is
// read lock-free once per pick; a new version rebuilds the host list, keeping hosts (and their
// connections) that stayed and retiring the ones that left. Owned and used by one worker thread.
#pragma once

#include <sys/socket.h>

#include <memory>
#include <string>
#include <vector>

#include "core/registry.h"
#include "proxy/event_loop.h"
#include "proxy/proxy_options.h"
#include "proxy/proxy_stats.h"

namespace podlb::proxy {

class HealthChecker;
class UpstreamSession;
class Worker;

struct UpstreamHost {
  Endpoint endpoint;
  std::string host_port;
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  bool draining = false;  // terminating but serving: no new streams
  bool removed = false;   // gone from the snapshot: no new streams, close when idle
  uint32_t outstanding = 0;
  uint64_t picks = 0;
  uint32_t consecutive_failures = 0;
  uint32_t ejections = 0;
  bool health_check_failed = false;  // last active grpc.health.v1 probe said not SERVING
  std::string last_error;  // why the last connection to it failed or was lost, for call errors
  Clock::time_point ejected_until{};
  std::vector<std::unique_ptr<UpstreamSession>> sessions;
  std::shared_ptr<HostStats> stats;
};

class Cluster {
 public:
  Cluster(ServiceKey key, EndpointSlotConstSharedPtr slot, Worker* worker);
  ~Cluster();

  const ServiceKey& key() const { return key_; }
  // nullptr when no endpoint can take a stream; `error` then says why.
  UpstreamHost* Pick(std::string_view hash_value, const UpstreamHost* exclude, std::string* error);
  // A session with room for one more stream (opening one if needed), or nullptr.
  UpstreamSession* SessionFor(UpstreamHost* host);
  void ReportSuccess(UpstreamHost* host);
  void ReportFailure(UpstreamHost* host);
  // Closes sessions of removed hosts once idle and frees hosts with no sessions left.
  void Sweep();
  // Every host's state, for /debug/endpoints (worker thread).
  std::string Describe();
  std::vector<UpstreamHost*> Hosts();

 private:
  void RefreshIfChanged();
  void BuildRing();

  ServiceKey key_;
  std::string key_text_;
  EndpointSlotConstSharedPtr slot_;
  Worker* worker_;
  uint64_t version_ = 0;
  std::vector<std::unique_ptr<UpstreamHost>> hosts_;
  std::vector<std::unique_ptr<UpstreamHost>> retired_;
  std::vector<UpstreamHost*> candidates_;  // scratch, reused per pick
  std::vector<std::pair<uint64_t, UpstreamHost*>> ring_;
  uint64_t rr_next_ = 0;
  std::unique_ptr<HealthChecker> health_checker_;  // when active checks are on
  uint64_t rng_;
};

uint64_t HashBytes(std::string_view bytes);

}  // namespace podlb::proxy
