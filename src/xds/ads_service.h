// AdsService: the xDS v3 Aggregated Discovery Service (state of the world) over a Registry.
//
// Why grpc++'s callback API (ServerBidiReactor) rather than a synchronous server with a thread
// per stream: a control plane holds thousands of mostly idle streams; reactors cost a few KB
// each instead of one or two blocked threads, and a push is a non-blocking StartWrite from the
// one push thread, so fan-out time does not depend on thread scheduling.
//
// Registry changes are coalesced on the push thread (a window of a few ms from the first change,
// so a rolling restart's storm of slice updates becomes a few pushes without delaying any single
// change by more than the window), then fanned out to the streams that watch the changed
// Services, found through an index (Service → streams), so a change costs in proportion to its
// watchers, not to every connected stream; every stream takes encoded resources from one shared
// ResourceCache. The ADS method is registered raw (ByteBuffer in and out) so that a response is
// assembled from the cache's shared bytes rather than copied into a message per stream.
// Start/Stop from one control thread; the reactions run on gRPC threads; accessors are
// thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "core/registry.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "xds/resource_cache.h"
#include "xds/xds_metrics.h"

namespace podlb::xds {

class AdsStream;

struct AdsServiceOptions {
  std::chrono::microseconds coalesce_window{std::chrono::milliseconds(2)};
  std::string control_plane_id = "podlb";
};

using AdsServiceBase = envoy::service::discovery::v3::AggregatedDiscoveryService::
    WithRawCallbackMethod_StreamAggregatedResources<
        envoy::service::discovery::v3::AggregatedDiscoveryService::
            WithCallbackMethod_DeltaAggregatedResources<
                envoy::service::discovery::v3::AggregatedDiscoveryService::Service>>;

class AdsService final : public AdsServiceBase {
 public:
  AdsService(Registry& registry, AdsServiceOptions options = {});
  ~AdsService() override;  // calls Stop

  // Subscribes to the Registry and starts the push thread.
  void Start();
  // Stops pushing. Call after the grpc::Server has shut down (its streams are then finished).
  void Stop();

  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* StreamAggregatedResources(
      grpc::CallbackServerContext* context) override;
  // DeltaAggregatedResources is not overridden: the base class answers UNIMPLEMENTED, and
  // clients fall back to state of the world.

  const XdsMetrics& metrics() const { return metrics_; }
  // metrics() plus gauges of what the service holds (resource cache, Registry keys), as
  // Prometheus text for /metrics.
  std::string PrometheusText() const;
  // The resources each connected client holds (its last ACKed response per type), as JSON.
  std::string DebugConfigJson() const;
  size_t StreamCount() const;

 private:
  friend class AdsStream;
  void RemoveStream(uint64_t id);
  // The Services stream `id` watches now (and whether it has a wildcard subscription), for the
  // fan-out index. Called by the stream with its own lock held.
  void UpdateWatches(uint64_t id, std::set<ServiceKey> keys, bool wildcard);
  void UnindexLocked(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(streams_mu_);
  void PushLoop();

  struct StreamEntry {
    std::shared_ptr<AdsStream> stream;
    std::set<ServiceKey> keys;  // as indexed in watchers_
    bool wildcard = false;
  };

  Registry& registry_;
  const AdsServiceOptions options_;
  XdsMetrics metrics_;
  ResourceCache cache_;
  std::unique_ptr<Subscription> subscription_;

  mutable absl::Mutex streams_mu_;
  std::map<uint64_t, StreamEntry> streams_ ABSL_GUARDED_BY(streams_mu_);
  std::map<ServiceKey, std::set<uint64_t>> watchers_ ABSL_GUARDED_BY(streams_mu_);
  std::set<uint64_t> wildcard_streams_ ABSL_GUARDED_BY(streams_mu_);
  uint64_t next_stream_id_ ABSL_GUARDED_BY(streams_mu_) = 1;

  absl::Mutex pending_mu_;
  std::set<ServiceKey> pending_ ABSL_GUARDED_BY(pending_mu_);
  absl::Time pending_since_ ABSL_GUARDED_BY(pending_mu_);
  bool stopping_ ABSL_GUARDED_BY(pending_mu_) = false;
  std::thread push_thread_;
};

}  // namespace podlb::xds
