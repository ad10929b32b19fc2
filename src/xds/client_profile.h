// What one xDS client can do (from its xDS node), and the Cluster lb_policy that client is sent
// for a Service's ServicePolicy: the balancing core's policy degraded to what the client has.
// Pure values and functions: callable from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "balancing/service_policy.h"
#include "xds/node_proto_fwd.h"

namespace podlb::xds {

// The lb_policy values of an xDS Cluster that podlb sends (what the wire can carry; peak_ewma
// has no xDS form).
enum class LbPolicy { kRoundRobin, kRingHash, kLeastRequest };
std::string_view ToString(LbPolicy policy);

// The Service's wishes come from the balancing core's one parser (podlb.io/* annotations); the
// control plane reads them with the core's plain defaults (round_robin, no outlier detection).
using balancing::ServicePolicy;

// Node metadata key (string, comma-separated) overriding what podlb assumes a client supports.
inline constexpr char kCapabilitiesMetadataKey[] = "podlb.io/capabilities";

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
// peak_ewma goes to every xDS client as round_robin (no xDS client implements it); outlier
// detection, when the Service asks for it, is what sheds a bad pod there.
LbPolicy EffectiveLbPolicy(const ServicePolicy& policy, const ClientProfile& client);

}  // namespace podlb::xds
