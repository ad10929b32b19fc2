// ResourceCache: the encoded xDS resources of every Service, built once per (resource, variant)
// and EndpointSet version, and shared by every stream that sends them. A variant is what differs
// between clients of one Service: the lb policy they can take, and for zone-aware Services their
// zone, so a push to 1,000 clients encodes each resource once per zone, not once per client.
// Thread-safe: streams call Get from gRPC threads.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/registry.h"
#include "google/protobuf/any.pb.h"
#include "xds/client_profile.h"
#include "xds/type_urls.h"

namespace podlb::xds {

struct CachedResource {
  ServiceKey key;           // the Service the resource comes from
  uint64_t set_version = 0;  // its EndpointSet version
  std::shared_ptr<const google::protobuf::Any> any;

  // Same bytes (pointer equality first: the common case is the very same cache entry).
  bool SameContent(const CachedResource& other) const {
    return any == other.any || (any && other.any && any->value() == other.any->value());
  }
};

class ResourceCache {
 public:
  explicit ResourceCache(Registry& registry) : registry_(registry) {}

  // The resource `name` of `type` as `client` should see it, or nullopt when it does not exist
  // (a name no Service matches, or a Service nobody published).
  std::optional<CachedResource> Get(ResourceType type, const std::string& name,
                                    const ClientProfile& client);

  // The Service a resource name refers to, if the name parses as one.
  static std::optional<ServiceKey> KeyOf(const std::string& name);

  // Names of every existing resource of `type` (wildcard subscriptions).
  std::vector<std::string> AllNames(ResourceType type) const;

  // Forgets entries of Services whose snapshot changed; cheap bookkeeping for long runs.
  size_t size() const;

 private:
  struct Entry {
    uint64_t set_version = 0;
    std::shared_ptr<const google::protobuf::Any> any;
  };
  struct PolicyEntry {
    uint64_t set_version = 0;
    ServicePolicy policy;
  };
  const ServicePolicy& PolicyLocked(const EndpointSet& set) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  Registry& registry_;
  mutable absl::Mutex mu_;
  // (type, name, variant) → encoded resource.
  std::map<std::tuple<ResourceType, std::string, std::string>, Entry> entries_
      ABSL_GUARDED_BY(mu_);
  std::map<ServiceKey, PolicyEntry> policies_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb::xds
