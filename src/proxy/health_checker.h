// HealthChecker: optional active grpc.health.v1 checks for one worker's Cluster. Every interval
// it sends `grpc.health.v1.Health/Check` (service "") to each host over the host's own upstream
// sessions; a host whose answer is not SERVING (or that does not answer within the interval)
// takes no new streams until a later probe succeeds. Owned by its Cluster; worker thread only.
#pragma once

#include <chrono>
#include <memory>
#include <unordered_map>

#include "h2/event_loop.h"

namespace podlb::proxy {

using h2::EventLoop;

class Cluster;
struct UpstreamHost;

class HealthChecker {
 public:
  HealthChecker(Cluster* cluster, EventLoop& loop, std::chrono::milliseconds interval);
  ~HealthChecker();  // cancels probes in flight

  class Probe;
  // Called by a probe when its stream ended; destroys the probe.
  void OnProbeDone(Probe* probe, bool serving);

 private:
  void Tick();
  void SetHealth(UpstreamHost* host, bool serving);

  Cluster* cluster_;
  EventLoop& loop_;
  std::chrono::milliseconds interval_;
  uint64_t timer_ = 0;
  std::unordered_map<UpstreamHost*, std::unique_ptr<Probe>> probes_;
};

}  // namespace podlb::proxy
