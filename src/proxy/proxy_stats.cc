#include "proxy/proxy_stats.h"

#include "fmt/format.h"

namespace podlb::proxy {

void ProxyStats::PruneLocked() const {
  // use_count 1: only this map holds it (an UpstreamHost holds it while the pod is used).
  for (auto it = hosts_.begin(); it != hosts_.end();) {
    it = it->second.use_count() == 1 ? hosts_.erase(it) : std::next(it);
  }
}

std::shared_ptr<HostStats> ProxyStats::ForHost(const std::string& service,
                                               const std::string& address) {
  absl::MutexLock lock(&mu_);
  PruneLocked();
  auto& slot = hosts_[{service, address}];
  if (!slot) {
    slot = std::make_shared<HostStats>();
    slot->service = service;
    slot->address = address;
  }
  return slot;
}

std::string ProxyStats::Render() const {
  std::string out;
  auto counter = [&](const char* name, const char* help, uint64_t value) {
    out += fmt::format("# HELP {0} {1}\n# TYPE {0} counter\n{0} {2}\n", name, help, value);
  };
  counter("podlb_proxy_downstream_connections_total", "Downstream connections accepted.",
          downstream_connections_total.load());
  out += fmt::format(
      "# HELP podlb_proxy_downstream_connections_active Open downstream connections.\n"
      "# TYPE podlb_proxy_downstream_connections_active gauge\n"
      "podlb_proxy_downstream_connections_active {}\n",
      downstream_connections_active.load());
  counter("podlb_proxy_downstream_streams_total", "Downstream streams (gRPC calls) started.",
          downstream_streams_total.load());
  counter("podlb_proxy_local_replies_total", "Calls answered by the proxy with a gRPC error.",
          local_replies_total.load());
  counter("podlb_proxy_deadline_exceeded_total", "Calls ended by grpc-timeout.",
          deadline_exceeded_total.load());
  counter("podlb_proxy_flood_goaways_total",
          "Connections closed with ENHANCE_YOUR_CALM (reset, SETTINGS or PING floods).",
          flood_goaways_total.load());
  counter("podlb_proxy_header_limit_resets_total", "Streams reset for oversized header lists.",
          header_limit_resets_total.load());
  counter("podlb_proxy_idle_closes_total", "Connections closed for idleness or no handshake.",
          idle_closes_total.load());
  out += fmt::format(
      "# HELP podlb_proxy_clusters Service clusters held by the workers (summed).\n"
      "# TYPE podlb_proxy_clusters gauge\npodlb_proxy_clusters {}\n",
      clusters.load());
  absl::MutexLock lock(&mu_);
  PruneLocked();
  out += fmt::format(
      "# HELP podlb_proxy_upstream_hosts Upstream endpoints the workers hold.\n"
      "# TYPE podlb_proxy_upstream_hosts gauge\npodlb_proxy_upstream_hosts {}\n",
      hosts_.size());
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    int64_t (*get)(const HostStats&);
  } families[] = {
      {"podlb_proxy_upstream_requests_total", "counter", "Streams sent to an upstream endpoint.",
       [](const HostStats& h) { return static_cast<int64_t>(h.requests.load()); }},
      {"podlb_proxy_upstream_active_streams", "gauge", "Streams open to an upstream endpoint.",
       [](const HostStats& h) { return h.active_streams.load(); }},
      {"podlb_proxy_upstream_errors_total", "counter",
       "Transport failures (connect, reset, connection lost) per upstream endpoint.",
       [](const HostStats& h) { return static_cast<int64_t>(h.errors.load()); }},
      {"podlb_proxy_upstream_retries_total", "counter",
       "Calls retried away from an endpoint (refused streams, and UNAVAILABLE within the retry "
       "budget).",
       [](const HostStats& h) { return static_cast<int64_t>(h.retries.load()); }},
      {"podlb_proxy_upstream_connections_total", "counter", "Connections opened to an endpoint.",
       [](const HostStats& h) { return static_cast<int64_t>(h.connections.load()); }},
  };
  for (const auto& f : families) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
    for (const auto& [key, stats] : hosts_) {
      out += fmt::format("{}{{service=\"{}\",endpoint=\"{}\"}} {}\n", f.name, key.first, key.second,
                         f.get(*stats));
    }
  }
  return out;
}

}  // namespace podlb::proxy
