// ResourceCache: the encoded xDS resources of every Service, built once per (resource, variant)
// and EndpointSet version, and shared by every stream that sends them. A variant is what differs
// between clients of one Service: the lb policy they can take, and for zone-aware Services their
// zone, so a push to 1,000 clients encodes each resource once per zone, not once per client.
// Entries live as long as their Service and version: Forget (the push thread, once per batch of
// Registry changes) drops the entries of Services that no longer exist and the variants built
// for a superseded EndpointSet, so a control plane under years of churn holds only what its
// clients ask for now. Thread-safe: streams call Get from gRPC threads.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/hash.h"
#include "core/registry.h"
#include "google/protobuf/any.pb.h"
#include "xds/client_profile.h"
#include "xds/type_urls.h"
#include "xds/xds_metrics.h"

namespace podlb::xds {

// One encoded resource, immutable once built and shared by every stream that sends it. Besides
// the Any (for debug views), it carries the bytes of the resource as a DiscoveryResponse
// `resources` entry, so a stream assembles a response from shared slices without copying or
// re-serializing the resource, and the hash of its content, so a response's content version
// costs a hash per resource name rather than a pass over every byte, per stream.
struct EncodedResource {
  google::protobuf::Any any;
  std::string response_field;  // tag + length + Any bytes of DiscoveryResponse field 2
  uint64_t content_hash = 0;   // FNV-1a of the type URL and bytes (see ContentHash)

  static std::shared_ptr<const EncodedResource> From(google::protobuf::Any any);
  // Same bytes (pointer equality first: the common case is the very same cache entry).
  static bool SameContent(const std::shared_ptr<const EncodedResource>& a,
                          const std::shared_ptr<const EncodedResource>& b) {
    return a == b || (a && b && a->any.value() == b->any.value());
  }
};
using EncodedResourceConstSharedPtr = std::shared_ptr<const EncodedResource>;

// A response's version_info, derived from what the client then holds (FNV-1a 64 over each
// resource's name and content hash, length-prefixed, in name order) rather than counted per
// stream: replicas of the control plane, and one replica before and after a restart, then give
// the same resources the same version, so a client that reconnects elsewhere sees no version
// change and debug views agree. The hash must not be seeded per process (absl::Hash is), or
// replicas disagree. Each resource's own hash is computed once, in the cache, so a push costs a
// few bytes hashed per name, not the resources' bytes per stream. Add the resources in name
// order (bytewise, as std::string compares).
class ContentVersion {
 public:
  void Add(std::string_view name, const EncodedResource& resource);
  uint64_t value() const { return hash_; }
  // As it goes on the wire: 16 hex digits.
  static std::string Format(uint64_t version);

 private:
  uint64_t hash_ = kFnv1a64Offset;
};

class ResourceCache {
 public:
  // `metrics` (may be null) counts the encodes.
  explicit ResourceCache(Registry& registry, XdsMetrics* metrics = nullptr)
      : registry_(registry), metrics_(metrics) {}

  // The resource `name` of `type` as `client` should see it, or nullptr when it does not exist
  // (a name no Service matches, or a Service nobody published).
  EncodedResourceConstSharedPtr Get(ResourceType type, const std::string& name,
                                    const ClientProfile& client);
  // Same, for a name the caller already parsed into `key`.
  EncodedResourceConstSharedPtr Get(ResourceType type, const std::string& name,
                                    const ServiceKey& key, const ClientProfile& client);

  // The Service a resource name refers to, if the name parses as one.
  static std::optional<ServiceKey> KeyOf(const std::string& name);

  // Names of every existing resource of `type` (wildcard subscriptions).
  std::vector<std::string> AllNames(ResourceType type) const;

  // `keys` changed in the Registry: drops every entry of those that no longer exist. The push
  // thread calls it before the fan-out, so a client told that a Service is gone finds nothing of
  // it left in the cache (the fan-out asks nothing of a deleted Service, so nothing is lost).
  void ForgetDeleted(const std::set<ServiceKey>& keys);

  // `keys` changed in the Registry: drops every entry of those that no longer exist, and the
  // entries built from an older EndpointSet of the others. The push thread calls it once it has
  // posted the fan-out; the streams' Gets then build each variant still asked for once, at the
  // new version, and what nobody asks for again is not kept. Cost: the entries of `keys`, once
  // per batch, not per stream.
  void Forget(const std::set<ServiceKey>& keys);

  // Encoded resources held, and Services they belong to (for /metrics and the soak).
  size_t size() const;
  size_t ServiceCount() const;

 private:
  struct Entry {
    uint64_t set_version = 0;
    EncodedResourceConstSharedPtr resource;
  };
  struct PolicyEntry {
    uint64_t set_version = 0;
    ServicePolicy policy;
  };
  // The Service first, so one Service's entries are one range of the map.
  using EntryKey = std::tuple<ServiceKey, ResourceType, std::string, std::string>;
  // A lookup builds no key: it compares views of the caller's strings (a Get is made per stream
  // per changed name, so copying the key's strings for it would be most of its cost).
  using EntryKeyView =
      std::tuple<const ServiceKey&, ResourceType, std::string_view, std::string_view>;
  struct EntryKeyLess {
    using is_transparent = void;
    static EntryKeyView View(const EntryKey& key) {
      return {std::get<0>(key), std::get<1>(key), std::get<2>(key), std::get<3>(key)};
    }
    static const EntryKeyView& View(const EntryKeyView& key) { return key; }
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return View(a) < View(b);
    }
  };

  // Keyed by the key asked for, not set.key(): one EndpointSet is shared by every key of a
  // Service (its port's name and number), and Forget drops by the key it was given.
  const ServicePolicy& PolicyLocked(const ServiceKey& key, const EndpointSet& set)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the entries of `key` whose version is not `keep_version` (0: all of them, and its
  // policy).
  void ForgetLocked(const ServiceKey& key, uint64_t keep_version) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Registry& registry_;
  XdsMetrics* const metrics_;
  mutable absl::Mutex mu_;
  // (Service, type, name, variant) → encoded resource.
  std::map<EntryKey, Entry, EntryKeyLess> entries_ ABSL_GUARDED_BY(mu_);
  std::map<ServiceKey, PolicyEntry> policies_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb::xds
