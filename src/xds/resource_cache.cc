#include "xds/resource_cache.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/hash.h"
#include "core/logging.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "xds/resource_builders.h"

namespace podlb::xds {

namespace {

// One field into a running FNV-1a hash, length first, so ("ab","c") and ("a","bc") differ.
uint64_t MixField(uint64_t hash, std::string_view bytes) {
  char length[8];
  for (size_t n = bytes.size(), i = 0; i < 8; ++i, n >>= 8) length[i] = static_cast<char>(n & 0xff);
  return Fnv1a64(bytes, Fnv1a64(std::string_view(length, 8), hash));
}

}  // namespace

void ContentVersion::Add(std::string_view name, const EncodedResource& resource) {
  char content[8];
  for (size_t i = 0; i < 8; ++i) content[i] = static_cast<char>(resource.content_hash >> (8 * i));
  hash_ = MixField(MixField(hash_, name), std::string_view(content, 8));
}

std::string ContentVersion::Format(uint64_t version) {
  return absl::StrCat(absl::Hex(version, absl::kZeroPad16));
}

EncodedResourceConstSharedPtr EncodedResource::From(google::protobuf::Any any) {
  auto out = std::make_shared<EncodedResource>();
  out->any = std::move(any);
  // The wire form of `repeated Any resources = 2` for this one entry: a response is then its
  // small per-stream header fields followed by these bytes, in any order (protobuf merges).
  envoy::service::discovery::v3::DiscoveryResponse one;
  *one.add_resources() = out->any;
  one.SerializeToString(&out->response_field);
  // Not seeded per process: replicas must agree (see ContentVersion).
  uint64_t hash = MixField(kFnv1a64Offset, out->any.type_url());
  hash = MixField(hash, out->any.value());
  out->content_hash = hash;
  return out;
}

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
  for (auto it = entries_.lower_bound(EntryKeyView{key, ResourceType{}, "", ""});
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

void ResourceCache::ForgetDeleted(const std::set<ServiceKey>& keys) {
  for (const ServiceKey& key : keys) {
    if (registry_.Current(key)) continue;
    absl::MutexLock lock(&mu_);
    ForgetLocked(key, 0);
  }
}

const ServicePolicy& ResourceCache::PolicyLocked(const ServiceKey& key, const EndpointSet& set) {
  PolicyEntry& entry = policies_[key];
  if (entry.set_version != set.version()) {
    ServicePolicy policy = balancing::ParseServicePolicy(set.annotations());
    if (!policy.problems.empty() &&
        (entry.set_version == 0 || entry.policy.problems != policy.problems)) {
      LogWarn("xds: Service {}: {}", key.ToString(), absl::StrJoin(policy.problems, "; "));
    }
    if (policy.lb_policy == balancing::PolicyKind::kPeakEwma &&
        (entry.set_version == 0 || entry.policy.lb_policy != policy.lb_policy)) {
      // Said once per change: the Service's wish is honoured by the proxy and the library, and
      // xDS clients get the nearest thing they have.
      LogInfo("xds: Service {} asks for peak_ewma, which no xDS client implements: xDS clients "
              "get round_robin{}",
              key.ToString(),
              policy.outlier.enabled ? " with outlier detection"
                                     : " (annotate podlb.io/outlier-detection: \"true\" to "
                                       "shed failing pods)");
    }
    entry.policy = std::move(policy);
    entry.set_version = set.version();
  }
  return entry.policy;
}

EncodedResourceConstSharedPtr ResourceCache::Get(ResourceType type, const std::string& name,
                                                 const ClientProfile& client) {
  std::optional<ServiceKey> key = KeyOf(name);
  if (!key) return nullptr;
  return Get(type, name, *key, client);
}

EncodedResourceConstSharedPtr ResourceCache::Get(ResourceType type, const std::string& name,
                                                 const ServiceKey& key,
                                                 const ClientProfile& client) {
  EndpointSetConstSharedPtr set = registry_.Current(key);
  if (!set) {
    // A name that stopped resolving (its Service was deleted): what was built for it goes, even
    // if the Registry change that said so has not been through Forget yet.
    absl::MutexLock lock(&mu_);
    ForgetLocked(key, 0);
    return nullptr;
  }

  absl::MutexLock lock(&mu_);
  const ServicePolicy& policy = PolicyLocked(key, *set);
  LbPolicy lb = EffectiveLbPolicy(policy, client);
  bool outlier = client.supports_outlier_detection;
  std::string variant;
  if (type == ResourceType::kClusterLoadAssignment) {
    if (policy.zone_aware) variant = "zone=" + client.zone;
  } else {
    variant = std::string(ToString(lb)) + (outlier ? "+od" : "");
  }
  auto found = entries_.find(EntryKeyView{key, type, name, variant});
  if (found == entries_.end()) {
    found = entries_.emplace(EntryKey{key, type, name, variant}, Entry{}).first;
  }
  Entry& entry = found->second;
  if (entry.resource && entry.set_version == set->version()) return entry.resource;
  std::string cluster = ClusterNameFor(key);
  google::protobuf::Any any;
  switch (type) {
    case ResourceType::kListener:
      any.PackFrom(ListenerBuilder(name, cluster, policy, lb).Build());
      break;
    case ResourceType::kRouteConfiguration:
      any.PackFrom(RouteConfigurationBuilder(name, cluster, policy, lb).Build());
      break;
    case ResourceType::kCluster:
      any.PackFrom(ClusterBuilder(name, policy, lb, outlier).Build());
      break;
    case ResourceType::kClusterLoadAssignment:
      any.PackFrom(
          ClusterLoadAssignmentBuilder(name, *set, policy.zone_aware ? client.zone : "").Build());
      break;
  }
  if (metrics_) {
    metrics_->encodes_total[static_cast<size_t>(type)].fetch_add(1, std::memory_order_relaxed);
  }
  // A new EndpointSet version often leaves a resource's bytes as they were (the Listener,
  // Route and Cluster of an endpoint change; the EDS of a zone the change did not touch): keep
  // the old entry then, so streams see the same pointer and skip it at once.
  if (!entry.resource || entry.resource->any.value() != any.value()) {
    entry.resource = EncodedResource::From(std::move(any));
  }
  entry.set_version = set->version();
  return entry.resource;
}

}  // namespace podlb::xds
