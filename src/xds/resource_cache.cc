#include "xds/resource_cache.h"

#include "absl/strings/str_join.h"
#include "core/logging.h"
#include "xds/resource_builders.h"

namespace podlb::xds {

std::optional<ServiceKey> ResourceCache::KeyOf(const std::string& name) {
  auto key = ServiceKey::Parse(name);
  if (!key.ok()) return std::nullopt;
  return *key;
}

std::vector<std::string> ResourceCache::AllNames(ResourceType type) const {
  std::vector<std::string> names;
  for (const ServiceKey& key : registry_.Keys()) {
    names.push_back(type == ResourceType::kListener ? ListenerNameFor(key) : ClusterNameFor(key));
  }
  return names;
}

size_t ResourceCache::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

size_t ResourceCache::ServiceCount() const {
  absl::MutexLock lock(&mu_);
  return policies_.size();
}

void ResourceCache::ForgetLocked(const ServiceKey& key, uint64_t keep_version) {
  for (auto it = entries_.lower_bound(EntryKey{key, ResourceType{}, "", ""});
       it != entries_.end() && std::get<0>(it->first) == key;) {
    it = keep_version != 0 && it->second.set_version == keep_version ? std::next(it)
                                                                     : entries_.erase(it);
  }
  if (keep_version == 0) policies_.erase(key);
}

void ResourceCache::Forget(const std::set<ServiceKey>& keys) {
  for (const ServiceKey& key : keys) {
    // Read before the lock, as Get does: a set published meanwhile only means entries of the
    // newer version stay, or are rebuilt.
    EndpointSetConstSharedPtr set = registry_.Current(key);
    absl::MutexLock lock(&mu_);
    ForgetLocked(key, set ? set->version() : 0);
  }
}

const ServicePolicy& ResourceCache::PolicyLocked(const EndpointSet& set) {
  PolicyEntry& entry = policies_[set.key()];
  if (entry.set_version != set.version()) {
    ServicePolicy policy = balancing::ParseServicePolicy(set.annotations());
    if (!policy.problems.empty() &&
        (entry.set_version == 0 || entry.policy.problems != policy.problems)) {
      LogWarn("xds: Service {}: {}", set.key().ToString(), absl::StrJoin(policy.problems, "; "));
    }
    if (policy.lb_policy == balancing::PolicyKind::kPeakEwma &&
        (entry.set_version == 0 || entry.policy.lb_policy != policy.lb_policy)) {
      // Said once per change: the Service's wish is honoured by the proxy and the library, and
      // xDS clients get the nearest thing they have.
      LogInfo("xds: Service {} asks for peak_ewma, which no xDS client implements: xDS clients "
              "get round_robin{}",
              set.key().ToString(),
              policy.outlier.enabled ? " with outlier detection"
                                     : " (annotate podlb.io/outlier-detection: \"true\" to "
                                       "shed failing pods)");
    }
    entry.policy = std::move(policy);
    entry.set_version = set.version();
  }
  return entry.policy;
}

std::optional<CachedResource> ResourceCache::Get(ResourceType type, const std::string& name,
                                                 const ClientProfile& client) {
  std::optional<ServiceKey> key = KeyOf(name);
  if (!key) return std::nullopt;
  EndpointSetConstSharedPtr set = registry_.Current(*key);
  if (!set) {
    // A name that stopped resolving (its Service was deleted): what was built for it goes, even
    // if the Registry change that said so has not been through Forget yet.
    absl::MutexLock lock(&mu_);
    ForgetLocked(*key, 0);
    return std::nullopt;
  }

  absl::MutexLock lock(&mu_);
  const ServicePolicy& policy = PolicyLocked(*set);
  LbPolicy lb = EffectiveLbPolicy(policy, client);
  bool outlier = client.supports_outlier_detection;
  std::string cluster = ClusterNameFor(*key);
  std::string variant;
  if (type == ResourceType::kClusterLoadAssignment) {
    if (policy.zone_aware) variant = "zone=" + client.zone;
  } else {
    variant = std::string(ToString(lb)) + (outlier ? "+od" : "");
  }
  Entry& entry = entries_[{*key, type, name, variant}];
  if (entry.any && entry.set_version == set->version()) {
    return CachedResource{*key, set->version(), entry.any};
  }
  auto any = std::make_shared<google::protobuf::Any>();
  switch (type) {
    case ResourceType::kListener:
      any->PackFrom(ListenerBuilder(name, cluster, policy, lb).Build());
      break;
    case ResourceType::kRouteConfiguration:
      any->PackFrom(RouteConfigurationBuilder(name, cluster, policy, lb).Build());
      break;
    case ResourceType::kCluster:
      any->PackFrom(ClusterBuilder(name, policy, lb, outlier).Build());
      break;
    case ResourceType::kClusterLoadAssignment:
      any->PackFrom(
          ClusterLoadAssignmentBuilder(name, *set, policy.zone_aware ? client.zone : "").Build());
      break;
  }
  entry.any = std::move(any);
  entry.set_version = set->version();
  return CachedResource{*key, set->version(), entry.any};
}

}  // namespace podlb::xds
