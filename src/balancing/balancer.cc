#include "balancing/balancer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>

#include "absl/strings/str_join.h"
#include "core/logging.h"
#include "fmt/format.h"

namespace podlb::balancing {
namespace {

// Shares are fractions of one client's calls; as weights they are scaled so that the smallest
// useful share still weighs much more than the least weight there is (1), which a member the
// water-filling gave nothing gets (it takes calls only when the others cannot).
constexpr double kShareScale = 1'000'000;

uint32_t CandidateWeight(const BalancedEndpoint& e) {
  const uint64_t weight = std::max<uint32_t>(e.endpoint.weight, 1);
  if (!e.subset_share) return static_cast<uint32_t>(weight);
  const auto share = static_cast<uint64_t>(std::llround(*e.subset_share * kShareScale));
  return static_cast<uint32_t>(
      std::min<uint64_t>(weight * std::max<uint64_t>(share, 1), UINT32_MAX));
}

}  // namespace

int64_t MonotonicNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

Balancer::Balancer(ServiceKey key, BalancerOptions options)
    : key_(std::move(key)),
      options_(std::move(options)),
      subset_client_(SubsetClientFromId(options_.client_id)),
      policies_(options_.policies ? *options_.policies : BuiltinPolicies()) {
  absl::MutexLock lock(&mu_);
  table_ = std::make_shared<const EndpointTable>();
  policy_ = options_.defaults;
  RebuildLocked(MonotonicNanos());
}

void Balancer::Update(const EndpointSetConstSharedPtr& set, int64_t now_nanos) {
  absl::MutexLock lock(&mu_);
  ServicePolicy policy =
      ParseServicePolicy(set ? set->annotations() : std::map<std::string, std::string>{},
                         options_.defaults);
  if (policy.problems != logged_problems_) {
    for (const std::string& problem : policy.problems)
      LogWarn("{}: service {}: {}", options_.log_prefix, key_.ToString(), problem);
    logged_problems_ = policy.problems;
  }
  if (!policy.SameSettings(policy_)) {
    std::string subset;
    if (policy.subset_size > 0) {
      subset = fmt::format(", subsets of {} (client {}, {})", policy.subset_size,
                           options_.client_id.empty() ? "\"\"" : options_.client_id,
                           subset_client_.ordinal
                               ? "index " + std::to_string(subset_client_.index)
                               : std::string("no trailing number: the fleet balances like random "
                                             "subsetting; see docs/balancing.md"));
    }
    LogInfo("{}: service {} balances with {}{}{}{}", options_.log_prefix, key_.ToString(),
            ToString(policy.lb_policy), policy.outlier.enabled ? ", outlier ejection" : "",
            policy.zone_aware ? ", zone-aware" : "", subset);
  }
  policy_ = std::move(policy);

  std::map<std::string_view, const BalancedEndpoint*> previous;
  double rtt_sum = 0;
  size_t rtt_count = 0;
  for (const BalancedEndpoint& e : table_->endpoints) {
    previous.emplace(e.host_port, &e);
    double rtt = e.stats->RttEstimate(now_nanos);
    if (rtt > 0) {
      rtt_sum += rtt;
      ++rtt_count;
    }
  }
  // A new pod starts as an average peer: at zero it would draw every call until its first
  // answer, at a pessimistic default (linkerd2-proxy's 30 ms) it would wait for traffic for
  // tens of seconds after a scale-up.
  const double newcomer_rtt = rtt_count ? rtt_sum / static_cast<double>(rtt_count) : 0;
  const int64_t window = absl::ToInt64Nanoseconds(policy_.outlier.interval);

  auto next = std::make_shared<EndpointTable>();
  if (set) {
    next->version = set->version();
    next->subset = policy_.subset_size > 0;
    const std::vector<std::optional<double>> members = Members(*set, previous);
    const std::vector<Endpoint>& endpoints = set->endpoints();
    for (size_t i = 0; i < endpoints.size(); ++i) {
      const Endpoint& endpoint = endpoints[i];
      const EndpointHealth health = endpoint.Health();
      next->service_eligible += health == EndpointHealth::kEligible;
      if (!members[i]) continue;
      BalancedEndpoint entry;
      entry.endpoint = endpoint;
      if (next->subset) entry.subset_share = *members[i];
      entry.host_port = endpoint.HostPort();
      entry.draining = health == EndpointHealth::kDraining;
      std::shared_ptr<const void> attachment_before;
      if (auto it = previous.find(entry.host_port); it != previous.end()) {
        entry.stats = it->second->stats;  // same pod address: its history carries over
        attachment_before = it->second->attachment;
      } else {
        entry.stats = std::make_shared<EndpointStats>(newcomer_rtt, now_nanos);
      }
      entry.stats->SetWindow(window);
      if (options_.attach) entry.attachment = options_.attach(entry, policy_, attachment_before);
      next->endpoints.push_back(std::move(entry));
    }
  }
  table_ = std::move(next);
  RebuildLocked(now_nanos);
}

std::vector<std::optional<double>> Balancer::Members(
    const EndpointSet& set,
    const std::map<std::string_view, const BalancedEndpoint*>& previous) const {
  const std::vector<Endpoint>& endpoints = set.endpoints();
  std::vector<std::optional<double>> members(endpoints.size());
  if (policy_.subset_size == 0) {
    for (size_t i = 0; i < endpoints.size(); ++i)
      if (endpoints[i].Health() != EndpointHealth::kExcluded) members[i] = 1.0;
    return members;
  }
  // The subset is chosen among the eligible endpoints, which every client sees alike. A member
  // that starts draining leaves the subset (its slot is refilled) but stays in the table until
  // it is gone, so its calls in flight finish on their connection and /debug still shows it.
  std::vector<uint32_t> eligible;
  std::vector<uint64_t> keys;
  eligible.reserve(endpoints.size());
  keys.reserve(endpoints.size());
  for (uint32_t i = 0; i < endpoints.size(); ++i) {
    const Endpoint& e = endpoints[i];
    switch (e.Health()) {
      case EndpointHealth::kEligible:
        eligible.push_back(i);
        keys.push_back(SubsetKeyHash(e.pod_name, e.pod_name.empty() ? e.HostPort() : ""));
        break;
      case EndpointHealth::kDraining:
        if (previous.contains(e.HostPort())) members[i] = 0.0;
        break;
      case EndpointHealth::kExcluded:
        break;
    }
  }
  for (const SubsetMember& member :
       ChooseWeightedSubset(keys, subset_client_.index, policy_.subset_size))
    members[eligible[member.position]] = member.share;
  return members;
}

void Balancer::RebuildLocked(int64_t now_nanos) {
  auto snapshot = std::make_shared<BalancerSnapshot>();
  snapshot->table = table_;
  snapshot->policy = policy_;
  const std::vector<BalancedEndpoint>& endpoints = table_->endpoints;

  // Layer 1: draining endpoints take no new calls. Layer 2: ejected ones neither, unless every
  // endpoint is ejected (then balance over all of them rather than fail every call).
  std::vector<uint32_t> serving, healthy;
  for (uint32_t i = 0; i < endpoints.size(); ++i) {
    const BalancedEndpoint& e = endpoints[i];
    if (e.draining) continue;
    serving.push_back(i);
    if (e.stats->Ejected(now_nanos)) {
      ++snapshot->ejected;
      snapshot->refresh_at_nanos = std::min(snapshot->refresh_at_nanos, e.stats->ejected_until());
    } else {
      healthy.push_back(i);
    }
  }
  std::vector<uint32_t> chosen = healthy;
  snapshot->mode = "all";
  if (healthy.empty() && !serving.empty()) {
    chosen = serving;
    snapshot->mode = "every endpoint ejected: all";
  }
  // Layer 3: zone preference. Local endpoints only while at least panic_threshold percent of
  // them are healthy; below that (or with none local) spread over every zone, as Envoy does.
  if (policy_.zone_aware && !options_.local_zone.empty() && !healthy.empty()) {
    size_t local_serving = 0;
    std::vector<uint32_t> local_healthy;
    for (uint32_t i : serving) local_serving += endpoints[i].endpoint.zone == options_.local_zone;
    for (uint32_t i : healthy)
      if (endpoints[i].endpoint.zone == options_.local_zone) local_healthy.push_back(i);
    if (local_serving > 0) {
      if (local_healthy.size() * 100 >= policy_.panic_threshold_percent * local_serving &&
          !local_healthy.empty()) {
        chosen = std::move(local_healthy);
        snapshot->mode = "local zone " + options_.local_zone;
      } else {
        snapshot->mode = "all zones (panic: " + std::to_string(local_healthy.size()) + " of " +
                         std::to_string(local_serving) + " endpoints in " + options_.local_zone +
                         " healthy)";
      }
    } else {
      snapshot->mode = "all zones (none in " + options_.local_zone + ")";
    }
  }
  snapshot->candidates.reserve(chosen.size());
  for (uint32_t i : chosen) {
    const BalancedEndpoint& e = endpoints[i];
    snapshot->candidates.push_back(Candidate{.index = i,
                                             .weight = CandidateWeight(e),
                                             .stats = e.stats.get(),
                                             .key = e.host_port});
  }
  if (!snapshot->candidates.empty()) {
    const PolicyFactory* factory = policies_.Find(policy_.lb_policy);
    if (factory == nullptr) factory = policies_.Find(PolicyKind::kRoundRobin);
    if (factory != nullptr) snapshot->picker = factory->Build(snapshot->candidates, policy_);
  }
  if (snapshot->mode != logged_mode_ && snapshot->mode.starts_with("all zones (panic")) {
    LogWarn("{}: service {}: {}", options_.log_prefix, key_.ToString(), snapshot->mode);
  }
  logged_mode_ = snapshot->mode;
  current_.store(std::move(snapshot), std::memory_order_release);
}

BalancerSnapshotConstSharedPtr Balancer::Current(int64_t now_nanos) {
  BalancerSnapshotConstSharedPtr snapshot = current_.load(std::memory_order_acquire);
  if (now_nanos < snapshot->refresh_at_nanos) return snapshot;
  // An ejection has ended. One caller rebuilds; the others go on with the old snapshot for the
  // microseconds that takes rather than wait.
  if (mu_.TryLock()) {
    if (current_.load(std::memory_order_acquire)->refresh_at_nanos <= now_nanos)
      RebuildLocked(now_nanos);
    mu_.Unlock();
    snapshot = current_.load(std::memory_order_acquire);
  }
  return snapshot;
}

void Balancer::OnFailure(EndpointStats& stats, uint32_t consecutive, int64_t now_nanos) {
  BalancerSnapshotConstSharedPtr snapshot = current_.load(std::memory_order_acquire);
  const OutlierPolicy& outlier = snapshot->policy.outlier;
  if (!outlier.enabled) return;
  // Cheap checks without the lock: most failures eject nothing.
  const bool by_consecutive =
      outlier.consecutive_failures > 0 && consecutive >= outlier.consecutive_failures;
  const uint32_t calls = stats.window_calls();
  const bool by_percentage =
      outlier.failure_percentage > 0 && calls >= outlier.minimum_requests &&
      uint64_t{stats.window_failures()} * 100 >= uint64_t{outlier.failure_percentage} * calls;
  if (!by_consecutive && !by_percentage) return;
  if (stats.Ejected(now_nanos)) return;

  absl::MutexLock lock(&mu_);
  if (stats.Ejected(now_nanos)) return;  // another thread was first
  const std::vector<BalancedEndpoint>& endpoints = table_->endpoints;
  const BalancedEndpoint* self = nullptr;
  size_t serving = 0, ejected = 0;
  for (const BalancedEndpoint& e : endpoints) {
    if (e.stats.get() == &stats) self = &e;
    if (e.draining) continue;
    ++serving;
    ejected += e.stats->Ejected(now_nanos);
  }
  if (self == nullptr) return;  // the pod left while its call was in flight
  // The cap: at most max_ejection_percent of the serving endpoints, but always at least one.
  const size_t cap = std::max<size_t>(1, serving * policy_.outlier.max_ejection_percent / 100);
  if (ejected >= cap) return;
  // Ejection time grows with each repeat; a pod healthy for a whole max_ejection since its
  // last ejection starts over.
  uint32_t times = stats.times_ejected();
  const int64_t max_nanos = absl::ToInt64Nanoseconds(policy_.outlier.max_ejection);
  if (stats.ejected_until() != 0 && now_nanos - stats.ejected_until() > max_nanos) times = 0;
  const int64_t duration =
      std::min(absl::ToInt64Nanoseconds(policy_.outlier.base_ejection) * (int64_t{times} + 1),
               max_nanos);
  const std::string reason = by_consecutive ? std::to_string(consecutive) + " consecutive failures"
                                            : std::to_string(stats.window_failures()) + " of " +
                                                  std::to_string(calls) + " calls failed";
  stats.SetEjectedUntil(now_nanos + duration);
  stats.SetTimesEjected(times + 1);
  stats.ResetFailureCounts();
  ejections_total_.fetch_add(1, std::memory_order_relaxed);
  LogWarn("{}: ejecting {} ({}) of {} for {} ms: {}", options_.log_prefix, self->host_port,
          self->endpoint.pod_name, key_.ToString(), duration / 1'000'000, reason);
  RebuildLocked(now_nanos);
}

std::vector<EndpointView> Balancer::Describe(int64_t now_nanos) const {
  BalancerSnapshotConstSharedPtr snapshot = current_.load(std::memory_order_acquire);
  std::vector<EndpointView> out;
  for (const BalancedEndpoint& e : snapshot->table->endpoints) {
    out.push_back(EndpointView{.host_port = e.host_port,
                               .pod_name = e.endpoint.pod_name,
                               .zone = e.endpoint.zone,
                               .draining = e.draining,
                               .ejected = e.stats->Ejected(now_nanos),
                               .in_flight = e.stats->in_flight(),
                               .rtt_estimate_ms = e.stats->RttEstimate(now_nanos) / 1e6,
                               .calls = e.stats->calls_total(),
                               .failures = e.stats->failures_total(),
                               .ejections = e.stats->ejections_total()});
  }
  return out;
}

}  // namespace podlb::balancing
