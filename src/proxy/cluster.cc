#include "proxy/cluster.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <map>

#include "core/logging.h"
#include "fmt/format.h"
#include "proxy/health_checker.h"
#include "proxy/upstream_session.h"
#include "proxy/worker.h"

namespace podlb::proxy {
namespace {

constexpr int kRingPointsPerHost = 64;

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

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

}  // namespace

uint64_t HashBytes(std::string_view bytes) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return Mix(h);
}

Cluster::Cluster(ServiceKey key, EndpointSlotConstSharedPtr slot, Worker* worker)
    : key_(std::move(key)),
      key_text_(key_.ToString()),
      slot_(std::move(slot)),
      worker_(worker),
      rng_(worker->NextRandom()) {
  if (worker->options().health_check_interval.count() > 0)
    health_checker_ =
        std::make_unique<HealthChecker>(this, worker, worker->options().health_check_interval);
}

// Probes go first: they hold streams on sessions the hosts own.
Cluster::~Cluster() { health_checker_.reset(); }

void Cluster::RefreshIfChanged() {
  EndpointSetConstSharedPtr set = slot_->Load();
  if (!set || set->version() == version_) return;
  version_ = set->version();
  std::map<std::string, std::unique_ptr<UpstreamHost>> old;
  for (auto& h : hosts_) old.emplace(h->host_port, std::move(h));
  hosts_.clear();
  uint64_t min_picks = UINT64_MAX;
  for (const auto& [_, h] : old) min_picks = std::min(min_picks, h->picks);
  if (min_picks == UINT64_MAX) min_picks = 0;
  for (const Endpoint& e : set->endpoints()) {
    if (e.Health() == EndpointHealth::kExcluded) continue;
    std::string hp = e.HostPort();
    std::unique_ptr<UpstreamHost> host;
    if (auto it = old.find(hp); it != old.end()) {
      host = std::move(it->second);
      old.erase(it);
    } else {
      host = std::make_unique<UpstreamHost>();
      host->host_port = hp;
      if (!FillAddress(e, host.get())) continue;
      host->stats = worker_->stats().ForHost(key_text_, hp);
      // A newcomer starts level with the least-used host, so the tie-break on total picks
      // spreads load onto it without flooding it.
      host->picks = min_picks;
    }
    host->endpoint = e;
    host->draining = e.Health() == EndpointHealth::kDraining;
    host->removed = false;
    hosts_.push_back(std::move(host));
  }
  for (auto& [_, h] : old) {
    h->removed = true;
    for (auto& s : h->sessions) s->Retire();
    retired_.push_back(std::move(h));
  }
  if (worker_->options().picker == PickerKind::kRingHash) BuildRing();
  Sweep();
}

void Cluster::BuildRing() {
  ring_.clear();
  for (auto& h : hosts_) {
    for (int i = 0; i < kRingPointsPerHost; ++i)
      ring_.emplace_back(HashBytes(h->host_port + "#" + std::to_string(i)), h.get());
  }
  std::sort(ring_.begin(), ring_.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
}

UpstreamHost* Cluster::Pick(std::string_view hash_value, const UpstreamHost* exclude,
                            std::string* error) {
  RefreshIfChanged();
  if (hosts_.empty()) {
    *error = slot_->Load() ? "service " + key_text_ + " has no ready endpoints"
                           : "service " + key_text_ + " is unknown to discovery (no endpoints yet)";
    return nullptr;
  }
  Clock::time_point now = worker_->loop().now();
  auto usable = [&](const UpstreamHost* h, bool ignore_ejection) {
    return !h->draining && h != exclude &&
           (ignore_ejection || (h->ejected_until <= now && !h->health_check_failed));
  };
  candidates_.clear();
  for (auto& h : hosts_)
    if (usable(h.get(), false)) candidates_.push_back(h.get());
  // Never eject everything: with every host ejected, balance over all of them (panic mode).
  if (candidates_.empty())
    for (auto& h : hosts_)
      if (usable(h.get(), true)) candidates_.push_back(h.get());
  // Only the excluded host is left: a retry may still go back to it. (`exclude` may be retired
  // and freed, so it is only compared, never dereferenced.)
  if (candidates_.empty() && exclude != nullptr)
    for (auto& h : hosts_)
      if (h.get() == exclude && !h->draining) candidates_.push_back(h.get());
  if (candidates_.empty()) {
    *error = "every endpoint of " + key_text_ + " is draining";
    return nullptr;
  }
  if (!worker_->options().zone.empty()) {
    auto other_zone = [&](const UpstreamHost* h) {
      return h->endpoint.zone != worker_->options().zone;
    };
    if (!std::all_of(candidates_.begin(), candidates_.end(), other_zone))
      candidates_.erase(std::remove_if(candidates_.begin(), candidates_.end(), other_zone),
                        candidates_.end());
  }
  UpstreamHost* chosen = nullptr;
  size_t n = candidates_.size();
  switch (worker_->options().picker) {
    case PickerKind::kRoundRobin:
      chosen = candidates_[rr_next_++ % n];
      break;
    case PickerKind::kRingHash: {
      if (!hash_value.empty() && !ring_.empty()) {
        uint64_t h = HashBytes(hash_value);
        auto it = std::lower_bound(ring_.begin(), ring_.end(), h,
                                   [](const auto& p, uint64_t v) { return p.first < v; });
        for (size_t i = 0; i < ring_.size() && chosen == nullptr; ++i, ++it) {
          if (it == ring_.end()) it = ring_.begin();
          if (std::find(candidates_.begin(), candidates_.end(), it->second) != candidates_.end())
            chosen = it->second;
        }
      }
      if (chosen != nullptr) break;
      [[fallthrough]];  // no header: behave like the default
    }
    case PickerKind::kP2c: {
      if (n == 1) {
        chosen = candidates_[0];
        break;
      }
      rng_ = Mix(rng_ + 0x9e3779b97f4a7c15ULL);
      size_t i = rng_ % n;
      size_t j = (rng_ >> 32) % (n - 1);
      if (j >= i) ++j;
      UpstreamHost* a = candidates_[i];
      UpstreamHost* b = candidates_[j];
      // Fewer outstanding streams wins; on a tie (the common case for a lightly loaded client)
      // the host picked less often wins, which keeps sequential calls evenly spread.
      auto key = [](const UpstreamHost* h) {
        return std::make_pair(
            static_cast<uint64_t>(h->outstanding) / std::max(1u, h->endpoint.weight),
            h->picks / std::max(1u, h->endpoint.weight));
      };
      chosen = key(b) < key(a) ? b : a;
      break;
    }
  }
  ++chosen->picks;
  return chosen;
}

UpstreamSession* Cluster::SessionFor(UpstreamHost* host) {
  UpstreamSession* least = nullptr;
  for (auto& s : host->sessions) {
    if (s->HasCapacity()) return s.get();
  }
  // Drop closed sessions before deciding whether another one fits.
  Sweep();
  if (static_cast<int>(host->sessions.size()) < worker_->options().max_connections_per_host) {
    auto session = std::make_unique<UpstreamSession>(worker_, this, host);
    if (!session->Connect()) {
      ReportFailure(host);
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

void Cluster::ReportSuccess(UpstreamHost* host) { host->consecutive_failures = 0; }

void Cluster::ReportFailure(UpstreamHost* host) {
  host->stats->errors.fetch_add(1, std::memory_order_relaxed);
  if (++host->consecutive_failures < worker_->options().consecutive_failures) return;
  Clock::time_point now = worker_->loop().now();
  if (host->ejected_until > now) return;
  auto base = worker_->options().base_ejection;
  std::chrono::milliseconds ejection = std::min<std::chrono::milliseconds>(
      base * (int64_t{1} << std::min(host->ejections, 10u)), worker_->options().max_ejection);
  ++host->ejections;
  host->ejected_until = now + ejection;
  host->consecutive_failures = 0;
  host->stats->ejections.fetch_add(1, std::memory_order_relaxed);
  LogWarn("proxy: ejecting {} of {} for {} ms after {} consecutive failures", host->host_port,
          key_text_, ejection.count(), worker_->options().consecutive_failures);
}

void Cluster::Sweep() {
  auto sweep_host = [&](UpstreamHost* h) {
    for (auto it = h->sessions.begin(); it != h->sessions.end();) {
      if ((*it)->closed()) {
        worker_->loop().DeferDelete(std::move(*it));
        it = h->sessions.erase(it);
      } else {
        ++it;
      }
    }
  };
  for (auto& h : hosts_) sweep_host(h.get());
  for (auto it = retired_.begin(); it != retired_.end();) {
    sweep_host(it->get());
    if ((*it)->sessions.empty() && (*it)->outstanding == 0) {
      it = retired_.erase(it);
    } else {
      ++it;
    }
  }
}

std::vector<UpstreamHost*> Cluster::Hosts() {
  RefreshIfChanged();
  std::vector<UpstreamHost*> out;
  for (auto& h : hosts_) out.push_back(h.get());
  return out;
}

std::string Cluster::Describe() {
  RefreshIfChanged();
  std::string out = fmt::format("service {} (snapshot version {})\n", key_text_, version_);
  Clock::time_point now = worker_->loop().now();
  for (auto& h : hosts_) {
    size_t open = 0;
    for (auto& s : h->sessions) open += !s->closed();
    out +=
        fmt::format("  {} pod={} zone={} {}{}{} outstanding={} picks={} sessions={}\n",
                    h->host_port, h->endpoint.pod_name, h->endpoint.zone,
                    h->draining ? "draining" : "eligible", h->ejected_until > now ? " EJECTED" : "",
                    h->health_check_failed ? " NOT_SERVING" : "", h->outstanding, h->picks, open);
  }
  for (auto& h : retired_)
    out += fmt::format("  {} retired outstanding={}\n", h->host_port, h->outstanding);
  return out;
}

}  // namespace podlb::proxy
