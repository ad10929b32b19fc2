// Counters of the xDS server, exported on the admin port in Prometheus text format. Atomics:
// updated from the event loops and the push thread, read from admin threads.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>

#include "absl/time/time.h"
#include "xds/type_urls.h"

namespace podlb::xds {

class XdsMetrics {
 public:
  std::atomic<int64_t> connected_clients{0};
  std::atomic<uint64_t> streams_total{0};
  std::atomic<uint64_t> pushes_total{0};        // DiscoveryResponses written
  std::atomic<uint64_t> resources_sent_total{0};
  std::atomic<uint64_t> acks_total{0};
  std::atomic<uint64_t> nacks_total{0};
  std::atomic<uint64_t> registry_changes_total{0};
  std::atomic<uint64_t> bytes_sent_total{0};  // DiscoveryResponse bytes handed to gRPC
  // Resources encoded by the ResourceCache, per type: once per version and variant of a
  // Service, never per client (what proves the cache at scale).
  std::array<std::atomic<uint64_t>, kResourceTypeCount> encodes_total{};
  // The fan-out: batches of coalesced changes, the streams they reached, and the time from the
  // batch to the last of its responses built and written by the event loops (not the network's
  // time to deliver them, nor a slow client's: a stream whose socket is full writes later).
  std::atomic<uint64_t> fanout_batches_total{0};
  std::atomic<uint64_t> fanout_streams_total{0};
  std::atomic<uint64_t> fanout_micros_total{0};
  std::atomic<uint64_t> fanout_micros_max{0};

  // From a Registry change reaching the control plane to the response leaving for one client.
  void ObservePushLatency(absl::Duration latency);
  void ObserveFanout(absl::Duration took, size_t streams);
  std::string PrometheusText() const;

 private:
  static constexpr std::array<double, 11> kBucketsSeconds = {
      0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
  std::array<std::atomic<uint64_t>, kBucketsSeconds.size() + 1> buckets_{};
  std::atomic<uint64_t> latency_count_{0};
  std::atomic<uint64_t> latency_sum_micros_{0};
};

}  // namespace podlb::xds
