#include "proxy/cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>

#include "core/hash.h"
#include "core/logging.h"
#include "fmt/format.h"
#include "proxy/health_checker.h"
#include "proxy/upstream_session.h"

namespace podlb::proxy {
namespace {

bool FillAddress(const Endpoint& endpoint, UpstreamHost* host) {
  auto* v4 = reinterpret_cast<sockaddr_in*>(&host->addr);
  if (inet_pton(AF_INET, endpoint.address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(endpoint.port);
    host->addr_len = sizeof(sockaddr_in);
    return true;
  }
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&host->addr);
  if (inet_pton(AF_INET6, endpoint.address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(endpoint.port);
    host->addr_len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

int64_t Nanos(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// PickArgs::usable: a host whose last active health check said NOT_SERVING is skipped while
// another is usable (per worker: the checks run on each worker's own connections).
bool HealthCheckPassed(const void* context, uint32_t index) {
  const auto& by_index = *static_cast<const std::vector<UpstreamHost*>*>(context);
  return index < by_index.size() && by_index[index] != nullptr &&
         !by_index[index]->health_check_failed;
}

}  // namespace

Cluster::Cluster(std::shared_ptr<ServiceBalancing> service, const UpstreamContext& context)
    : service_(std::move(service)), context_(context) {
  snapshot_ = service_->balancer->Current(NowNanos());
  if (context.health_check_interval.count() > 0)
    health_checker_ =
        std::make_unique<HealthChecker>(this, context.loop, context.health_check_interval);
}

// Probes go first: they hold streams on sessions the hosts own.
Cluster::~Cluster() { health_checker_.reset(); }

int64_t Cluster::NowNanos() const { return Nanos(context_.loop.now()); }

void Cluster::Refresh() {
  snapshot_ = service_->balancer->Current(NowNanos());
  if (snapshot_->table != table_) Resync(snapshot_->table);
}

void Cluster::Resync(const balancing::EndpointTableConstSharedPtr& table) {
  table_ = table;
  std::map<std::string, std::unique_ptr<UpstreamHost>, std::less<>> old = std::move(hosts_);
  hosts_.clear();
  by_index_.assign(table->endpoints.size(), nullptr);
  for (uint32_t i = 0; i < table->endpoints.size(); ++i) {
    const balancing::BalancedEndpoint& entry = table->endpoints[i];
    std::unique_ptr<UpstreamHost> host;
    if (auto it = old.find(entry.host_port); it != old.end()) {
      host = std::move(it->second);  // same pod address: keep its connections
      old.erase(it);
    } else {
      host = std::make_unique<UpstreamHost>();
      host->host_port = entry.host_port;
      if (!FillAddress(entry.endpoint, host.get())) continue;
      host->stats = context_.stats.ForHost(service_->key_text, entry.host_port);
    }
    host->endpoint = entry.endpoint;
    host->balance = entry.stats;
    host->index = i;
    host->removed = false;
    by_index_[i] = host.get();
    hosts_.emplace(entry.host_port, std::move(host));
  }
  for (auto& [_, h] : old) {
    h->removed = true;
    h->index = balancing::kNoEndpoint;
    for (auto& s : h->sessions) s->Retire();
    retired_.push_back(std::move(h));
  }
  Sweep();
}

UpstreamHost* Cluster::Pick(const HeaderBlock& request_headers, const UpstreamHost* exclude,
                            std::string* error) {
  Refresh();
  if (table_->endpoints.empty()) {
    *error = service_->slot->Load()
                 ? "service " + service_->key_text + " has no ready endpoints"
                 : "service " + service_->key_text + " is unknown to discovery (no endpoints yet)";
    return nullptr;
  }
  balancing::PickArgs args{.now_nanos = NowNanos(),
                           .random = context_.random.Next(),
                           .usable = &HealthCheckPassed,
                           .usable_context = &by_index_};
  if (snapshot_->policy.lb_policy == balancing::PolicyKind::kRingHash) {
    for (size_t i = 0; i < request_headers.size(); ++i) {
      if (request_headers.name(i) == snapshot_->policy.hash_header) {
        args.has_hash = true;
        args.hash = HashKey(request_headers.value(i));
        break;
      }
    }
  }
  // `exclude` may be retired and freed by now, so it is only compared, never dereferenced.
  if (exclude != nullptr) {
    for (uint32_t i = 0; i < by_index_.size(); ++i)
      if (by_index_[i] == exclude) args.exclude = i;
  }
  const uint32_t index = snapshot_->Pick(args);
  if (index == balancing::kNoEndpoint || by_index_[index] == nullptr) {
    *error = "every endpoint of " + service_->key_text + " is draining";
    return nullptr;
  }
  return by_index_[index];
}

UpstreamSession* Cluster::SessionFor(UpstreamHost* host) {
  UpstreamSession* least = nullptr;
  for (auto& s : host->sessions) {
    if (s->HasCapacity()) return s.get();
  }
  // Drop closed sessions before deciding whether another one fits.
  Sweep();
  if (static_cast<int>(host->sessions.size()) < context_.max_connections_per_host) {
    auto session = std::make_unique<UpstreamSession>(context_.loop, context_.connection, this, host);
    if (!session->Connect()) {
      ReportConnectFailure(host);
      return nullptr;
    }
    host->stats->connections.fetch_add(1, std::memory_order_relaxed);
    host->sessions.push_back(std::move(session));
    return host->sessions.back().get();
  }
  for (auto& s : host->sessions) {
    if (s->closed()) continue;
    if (least == nullptr || s->active_streams() < least->active_streams()) least = s.get();
  }
  return least;  // nghttp2 queues streams above the peer's limit
}

void Cluster::AttemptStarted(UpstreamHost* host) {
  ++host->outstanding;
  host->balance->CallStarted();
}

void Cluster::AttemptFinished(UpstreamHost* host, bool failure, int64_t latency_nanos) {
  --host->outstanding;
  if (failure) host->stats->errors.fetch_add(1, std::memory_order_relaxed);
  service_->balancer->RecordCall(*host->balance, failure, latency_nanos,
                                 NowNanos());
}

void Cluster::AttemptAbandoned(UpstreamHost* host) {
  --host->outstanding;
  host->balance->CallAbandoned();
}

void Cluster::ReportConnectFailure(UpstreamHost* host) {
  host->stats->errors.fetch_add(1, std::memory_order_relaxed);
  host->balance->CallStarted();
  service_->balancer->RecordCall(*host->balance, /*failure=*/true, 0,
                                 NowNanos());
}

void Cluster::Sweep() {
  auto sweep_host = [&](UpstreamHost* h) {
    for (auto it = h->sessions.begin(); it != h->sessions.end();) {
      if ((*it)->closed()) {
        context_.loop.DeferDelete(std::move(*it));
        it = h->sessions.erase(it);
      } else {
        ++it;
      }
    }
  };
  for (auto& [_, h] : hosts_) sweep_host(h.get());
  for (auto it = retired_.begin(); it != retired_.end();) {
    sweep_host(it->get());
    if ((*it)->sessions.empty() && (*it)->outstanding == 0) {
      it = retired_.erase(it);
    } else {
      ++it;
    }
  }
}

bool Cluster::RefreshAndCheckIdle() {
  Refresh();
  Sweep();
  return streams_ == 0 && hosts_.empty() && retired_.empty();
}

std::vector<UpstreamHost*> Cluster::Hosts() {
  Refresh();
  std::vector<UpstreamHost*> out;
  for (UpstreamHost* h : by_index_)
    if (h != nullptr) out.push_back(h);
  return out;
}

std::string Cluster::Describe() {
  Refresh();
  const int64_t now = NowNanos();
  const std::string subset =
      table_->subset ? fmt::format(", subset of {} of {} eligible", table_->endpoints.size(),
                                   table_->service_eligible)
                     : "";
  std::string out = fmt::format("service {} (snapshot version {}, {}, {}{})\n", service_->key_text,
                                table_->version, balancing::ToString(snapshot_->policy.lb_policy),
                                snapshot_->mode, subset);
  for (uint32_t i = 0; i < by_index_.size(); ++i) {
    const UpstreamHost* h = by_index_[i];
    if (h == nullptr) continue;
    const balancing::BalancedEndpoint& entry = table_->endpoints[i];
    size_t open = 0;
    for (auto& s : h->sessions) open += !s->closed();
    out += fmt::format(
        "  {} pod={} zone={} {}{}{} in_flight={} latency_ms={:.2f} outstanding_here={} "
        "sessions={}\n",
        h->host_port, h->endpoint.pod_name, h->endpoint.zone,
        entry.draining ? "draining" : "eligible", h->balance->Ejected(now) ? " EJECTED" : "",
        h->health_check_failed ? " NOT_SERVING" : "", h->balance->in_flight(),
        h->balance->RttEstimate(now) / 1e6, h->outstanding, open);
  }
  for (auto& h : retired_)
    out += fmt::format("  {} retired outstanding={}\n", h->host_port, h->outstanding);
  return out;
}

}  // namespace podlb::proxy
