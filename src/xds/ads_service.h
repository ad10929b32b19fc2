// AdsService: the xDS v3 Aggregated Discovery Service (state of the world) over a Registry,
// independent of the transport: XdsServer's connections (src/xds/ads_connection.h) open a stream
// here per ADS call and carry its bytes.
//
// Registry changes are coalesced on the push thread (a window of a few ms from the first change,
// so a rolling restart's storm of slice updates becomes a few pushes without delaying any single
// change by more than the window), then fanned out to the streams that watch the changed
// Services, found through an index (Service → streams), so a change costs in proportion to its
// watchers, not to every connected stream. The fan-out is one posted task per event loop, which
// marks its streams' changes and lets their connections write: the responses are built and sent
// on the loops' threads in parallel, with no lock shared between streams, and every stream takes
// encoded resources from one shared ResourceCache.
// Start/Stop from one control thread; accessors are thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/registry.h"
#include "h2/event_loop.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "xds/resource_cache.h"
#include "xds/resource_names.h"
#include "xds/xds_metrics.h"

namespace podlb::xds {

class AdsStream;

struct AdsServiceOptions {
  std::chrono::microseconds coalesce_window{std::chrono::milliseconds(2)};
  std::string control_plane_id = "podlb";
};

class AdsService final {
 public:
  AdsService(Registry& registry, AdsServiceOptions options = {});
  ~AdsService();  // calls Stop

  // Subscribes to the Registry and starts the push thread.
  void Start();
  // Stops pushing. Call once the loops carrying the streams have stopped.
  void Stop();

  // A new ADS stream from `peer`, carried by a connection on `loop`, whose thread makes every
  // call into the stream (the streams of one loop share its scratch request message). The transport calls CloseStream(id) when the stream ends.
  std::shared_ptr<AdsStream> OpenStream(std::string peer, h2::EventLoop* loop);
  void CloseStream(uint64_t id);

  const XdsMetrics& metrics() const { return metrics_; }
  // metrics() plus gauges of what the service holds (resource cache, Registry keys), as
  // Prometheus text for /metrics.
  std::string PrometheusText() const;
  // The resources each connected client holds (its last ACKed response per type), as JSON.
  std::string DebugConfigJson() const;
  size_t StreamCount() const;

 private:
  friend class AdsStream;
  // The Services stream `id` watches now (and whether it has a wildcard subscription), for the
  // fan-out index. Called by the stream with its own lock held.
  void UpdateWatches(uint64_t id, std::set<ServiceKey> keys, bool wildcard);
  void UnindexLocked(uint64_t id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(streams_mu_);
  void PushLoop();

  struct StreamEntry {
    std::shared_ptr<AdsStream> stream;
    h2::EventLoop* loop = nullptr;
    // As indexed in watchers_: its keys, which stay while this stream's id is in their set.
    std::vector<const ServiceKey*> keys;
    bool wildcard = false;
  };

  Registry& registry_;
  const AdsServiceOptions options_;
  XdsMetrics metrics_;
  ResourceCache cache_;
  const std::shared_ptr<ResourceNameTable> names_ = ResourceNameTable::Create();
  std::unique_ptr<Subscription> subscription_;

  mutable absl::Mutex streams_mu_;
  std::map<uint64_t, StreamEntry> streams_ ABSL_GUARDED_BY(streams_mu_);
  std::map<ServiceKey, std::set<uint64_t>> watchers_ ABSL_GUARDED_BY(streams_mu_);
  std::set<uint64_t> wildcard_streams_ ABSL_GUARDED_BY(streams_mu_);
  uint64_t next_stream_id_ ABSL_GUARDED_BY(streams_mu_) = 1;
  // One reusable request message per event loop (AdsStream::OnRequest parses into it).
  std::map<h2::EventLoop*, std::unique_ptr<envoy::service::discovery::v3::DiscoveryRequest>>
      scratch_requests_ ABSL_GUARDED_BY(streams_mu_);

  absl::Mutex pending_mu_;
  std::set<ServiceKey> pending_ ABSL_GUARDED_BY(pending_mu_);
  absl::Time pending_since_ ABSL_GUARDED_BY(pending_mu_);
  bool stopping_ ABSL_GUARDED_BY(pending_mu_) = false;
  std::thread push_thread_;
};

}  // namespace podlb::xds
