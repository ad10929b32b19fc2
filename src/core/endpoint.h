// The endpoint model shared by every part of podlb: ServiceKey names what a client asks for,
// Endpoint is one pod address with its EndpointSlice conditions, and EndpointSet is an immutable,
// versioned snapshot of one service port. Immutable values: safe to read from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace podlb {

// namespace/name:port, where port is a number or a port name as the Service spells it.
struct ServiceKey {
  std::string ns;
  std::string name;
  std::string port;

  std::string ToString() const;
  bool operator==(const ServiceKey&) const = default;
  auto operator<=>(const ServiceKey&) const = default;

  // Accepts `ns/name:port`, `name.ns:port`, `name.ns.svc:port`, `name.ns.svc.cluster.local:port`
  // (any cluster domain), and `name:port` with `default_ns`.
  static absl::StatusOr<ServiceKey> Parse(std::string_view text,
                                          std::string_view default_ns = "default");
};

// How a consumer treats an endpoint, from its EndpointSlice conditions (discovery.k8s.io/v1):
// ready → eligible; terminating and serving → draining (no new work, in-flight work finishes);
// anything else (not serving, or not ready and not terminating) → excluded.
enum class EndpointHealth { kEligible, kDraining, kExcluded };
std::string_view ToString(EndpointHealth health);

struct Endpoint {
  std::string address;  // IP literal
  uint16_t port = 0;    // the target port the pod listens on
  std::string pod_name;
  std::string node_name;
  std::string zone;
  bool ready = false;
  bool serving = false;
  bool terminating = false;
  uint32_t weight = 1;

  EndpointHealth Health() const;
  std::string HostPort() const;  // "1.2.3.4:80" or "[::1]:80"
  bool operator==(const Endpoint&) const = default;
};

class EndpointSet;
using EndpointSetConstSharedPtr = std::shared_ptr<const EndpointSet>;

// One service port's endpoints at one moment. Endpoints are sorted by (address, port) and unique
// by that pair, so two sets compare cheaply and consumers can diff them.
class EndpointSet {
 public:
  // Sorts and de-duplicates `endpoints` (a duplicate keeps the entry with the better health,
  // since two slices may carry one address while a pod moves between them).
  EndpointSet(ServiceKey key, uint64_t version, std::vector<Endpoint> endpoints,
              std::map<std::string, std::string> annotations = {});

  const ServiceKey& key() const { return key_; }
  uint64_t version() const { return version_; }
  const std::vector<Endpoint>& endpoints() const { return endpoints_; }
  const std::map<std::string, std::string>& annotations() const { return annotations_; }

  size_t CountWithHealth(EndpointHealth health) const;
  // Same endpoints and annotations (ignores key and version).
  bool SameContent(const EndpointSet& other) const;

 private:
  ServiceKey key_;
  uint64_t version_;
  std::vector<Endpoint> endpoints_;
  std::map<std::string, std::string> annotations_;
};

}  // namespace podlb
