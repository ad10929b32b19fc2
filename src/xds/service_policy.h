// What a Service asks of its clients (from `podlb.io/...` annotations) and what one client can
// do (from its xDS node), combined into the policy that client is sent. Pure values and
// functions: callable from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "xds/node_proto_fwd.h"

namespace podlb::xds {

enum class LbPolicy { kRoundRobin, kRingHash, kLeastRequest };
std::string_view ToString(LbPolicy policy);

inline constexpr char kLbPolicyAnnotation[] = "podlb.io/lb-policy";
inline constexpr char kHashHeaderAnnotation[] = "podlb.io/hash-header";
inline constexpr char kTimeoutAnnotation[] = "podlb.io/timeout";
inline constexpr char kRetryOnUnavailableAnnotation[] = "podlb.io/retry-on-unavailable";
inline constexpr char kZoneAwareAnnotation[] = "podlb.io/zone-aware";
inline constexpr char kOutlierDetectionAnnotation[] = "podlb.io/outlier-detection";
inline constexpr char kDefaultHashHeader[] = "x-podlb-hash-key";
// Node metadata key (string, comma-separated) overriding what podlb assumes a client supports.
inline constexpr char kCapabilitiesMetadataKey[] = "podlb.io/capabilities";

struct ServicePolicy {
  LbPolicy lb_policy = LbPolicy::kRoundRobin;
  std::string hash_header = kDefaultHashHeader;  // ring hash only
  std::optional<absl::Duration> timeout;
  uint32_t retries_on_unavailable = 0;  // 0: no retry policy
  bool zone_aware = false;
  bool outlier_detection = false;
  // One line per annotation that could not be used (logged once per change by the caller).
  std::vector<std::string> problems;
};

// Unknown or malformed values fall back to the default and are reported in `problems`.
ServicePolicy ParseServicePolicy(const std::map<std::string, std::string>& annotations);

// What one xDS client accepts, judged from its node's user agent. gRPC C-core (1.51) and
// grpc-js-xds NACK a Cluster whose lb_policy is anything but ROUND_ROBIN or RING_HASH.
struct ClientProfile {
  std::string zone;  // node.locality.zone, may be empty
  bool supports_ring_hash = true;
  bool supports_least_request = false;
  bool supports_outlier_detection = true;
  // Why a capability was withheld from this client, for the connect log line; empty if none.
  std::string note;
};
ClientProfile ProfileFromNode(const envoy::config::core::v3::Node& node);

// The policy actually sent to a client: the Service's wish, degraded to what the client has.
LbPolicy EffectiveLbPolicy(const ServicePolicy& policy, const ClientProfile& client);

}  // namespace podlb::xds
