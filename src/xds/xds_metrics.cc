#include "xds/xds_metrics.h"

#include "fmt/format.h"

namespace podlb::xds {

void XdsMetrics::ObservePushLatency(absl::Duration latency) {
  double seconds = absl::ToDoubleSeconds(latency);
  size_t i = 0;
  while (i < kBucketsSeconds.size() && seconds > kBucketsSeconds[i]) ++i;
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  latency_count_.fetch_add(1, std::memory_order_relaxed);
  latency_sum_micros_.fetch_add(static_cast<uint64_t>(absl::ToInt64Microseconds(latency)),
                                std::memory_order_relaxed);
}

void XdsMetrics::ObserveFanout(absl::Duration took, size_t streams) {
  auto micros = static_cast<uint64_t>(absl::ToInt64Microseconds(took));
  fanout_streams_total.fetch_add(streams, std::memory_order_relaxed);
  fanout_micros_total.fetch_add(micros, std::memory_order_relaxed);
  // Batches finish on any event loop, concurrently.
  uint64_t max = fanout_micros_max.load(std::memory_order_relaxed);
  while (micros > max && !fanout_micros_max.compare_exchange_weak(max, micros)) {
  }
  // Last, and ordered after the others: whoever sees a batch counted sees its streams and time.
  fanout_batches_total.fetch_add(1, std::memory_order_release);
}

std::string XdsMetrics::PrometheusText() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t value) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, value);
  };
  out += fmt::format(
      "# HELP podlb_xds_connected_clients ADS streams open now.\n"
      "# TYPE podlb_xds_connected_clients gauge\npodlb_xds_connected_clients {}\n",
      connected_clients.load());
  counter("podlb_xds_streams_total", "ADS streams accepted.", streams_total.load());
  counter("podlb_xds_pushes_total", "DiscoveryResponses sent.", pushes_total.load());
  counter("podlb_xds_resources_sent_total", "Resources carried by DiscoveryResponses.",
          resources_sent_total.load());
  counter("podlb_xds_acks_total", "Responses clients accepted.", acks_total.load());
  counter("podlb_xds_nacks_total", "Responses clients rejected.", nacks_total.load());
  counter("podlb_xds_registry_changes_total", "Endpoint set changes received from discovery.",
          registry_changes_total.load());
  counter("podlb_xds_bytes_sent_total", "DiscoveryResponse bytes written to clients.",
          bytes_sent_total.load());
  out += "# HELP podlb_xds_resource_encodes_total Resources encoded, per type (once per version "
         "and variant of a Service, not per client).\n"
         "# TYPE podlb_xds_resource_encodes_total counter\n";
  for (ResourceType type : kAllResourceTypes) {
    out += fmt::format("podlb_xds_resource_encodes_total{{type=\"{}\"}} {}\n", ShortName(type),
                       encodes_total[static_cast<size_t>(type)].load());
  }
  counter("podlb_xds_fanout_batches_total", "Batches of coalesced changes fanned out.",
          fanout_batches_total.load());
  counter("podlb_xds_fanout_streams_total", "Streams the fan-out batches reached.",
          fanout_streams_total.load());
  out += fmt::format(
      "# HELP podlb_xds_fanout_seconds_total Time from a batch of coalesced changes to the last "
      "response of its fan-out written (every event loop done).\n# TYPE podlb_xds_fanout_seconds_total counter\n"
      "podlb_xds_fanout_seconds_total {}\n"
      "# HELP podlb_xds_fanout_seconds_max The longest fan-out batch so far.\n"
      "# TYPE podlb_xds_fanout_seconds_max gauge\npodlb_xds_fanout_seconds_max {}\n",
      static_cast<double>(fanout_micros_total.load()) / 1e6,
      static_cast<double>(fanout_micros_max.load()) / 1e6);
  out += "# HELP podlb_xds_push_latency_seconds From an endpoint change to the response leaving "
         "for a client.\n# TYPE podlb_xds_push_latency_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBucketsSeconds.size(); ++i) {
    cumulative += buckets_[i].load();
    out += fmt::format("podlb_xds_push_latency_seconds_bucket{{le=\"{}\"}} {}\n",
                       kBucketsSeconds[i], cumulative);
  }
  cumulative += buckets_[kBucketsSeconds.size()].load();
  out += fmt::format("podlb_xds_push_latency_seconds_bucket{{le=\"+Inf\"}} {}\n", cumulative);
  out += fmt::format("podlb_xds_push_latency_seconds_sum {}\n",
                     static_cast<double>(latency_sum_micros_.load()) / 1e6);
  out += fmt::format("podlb_xds_push_latency_seconds_count {}\n", latency_count_.load());
  return out;
}

}  // namespace podlb::xds
