#include "xds/client_profile.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "envoy/config/core/v3/base.pb.h"

namespace podlb::xds {

std::string_view ToString(LbPolicy policy) {
  switch (policy) {
    case LbPolicy::kRoundRobin: return "round_robin";
    case LbPolicy::kRingHash: return "ring_hash";
    case LbPolicy::kLeastRequest: return "least_request";
  }
  return "?";
}

ClientProfile ProfileFromNode(const envoy::config::core::v3::Node& node) {
  ClientProfile profile;
  profile.zone = node.locality().zone();
  const std::string& agent = node.user_agent_name();
  // Known implementations of lb_policy LEAST_REQUEST among xDS clients: Envoy and grpc-java.
  // C-core (C++, Python, Ruby, ...), grpc-js-xds and grpc-go accept only ROUND_ROBIN and
  // RING_HASH there and NACK the whole Cluster response otherwise.
  profile.supports_least_request =
      absl::StartsWith(agent, "envoy") || absl::StartsWith(agent, "gRPC Java");
  for (const std::string& feature : node.client_features()) {
    if (feature == "podlb.io/least_request") profile.supports_least_request = true;
  }
  // C-core 1.50 and 1.51 (core versions 28 and 29: Debian 12's grpc++ and python3-grpcio)
  // crash in their ring_hash picker on the first call (grpc/grpc#31766, fixed in 1.52). They
  // get round robin for ring-hash Services; the metadata below can vouch for a patched build.
  const std::string& version = node.user_agent_version();
  if (absl::StartsWith(agent, "gRPC C-core") &&
      (absl::StartsWith(version, "C-core 28.") || absl::StartsWith(version, "C-core 29."))) {
    profile.supports_ring_hash = false;
    profile.note = "its ring_hash crashes (" + version +
                   " = gRPC 1.50/1.51, grpc/grpc#31766): ring-hash Services go to it as round robin";
  }
  // Operators can vouch for a client podlb does not recognise through the bootstrap's node
  // metadata: {"podlb.io/capabilities": "least_request,ring_hash"}. Listed means supported.
  auto it = node.metadata().fields().find(kCapabilitiesMetadataKey);
  if (it != node.metadata().fields().end() && it->second.has_string_value()) {
    for (absl::string_view cap : absl::StrSplit(it->second.string_value(), ',')) {
      cap = absl::StripAsciiWhitespace(cap);
      if (cap == "least_request") profile.supports_least_request = true;
      if (cap == "ring_hash") profile.supports_ring_hash = true;
      if (cap == "no_ring_hash") profile.supports_ring_hash = false;
      if (cap == "no_outlier_detection") profile.supports_outlier_detection = false;
    }
  }
  return profile;
}

LbPolicy EffectiveLbPolicy(const ServicePolicy& policy, const ClientProfile& client) {
  switch (policy.lb_policy) {
    case balancing::PolicyKind::kRoundRobin: return LbPolicy::kRoundRobin;
    case balancing::PolicyKind::kPeakEwma: return LbPolicy::kRoundRobin;
    case balancing::PolicyKind::kRingHash:
      return client.supports_ring_hash ? LbPolicy::kRingHash : LbPolicy::kRoundRobin;
    case balancing::PolicyKind::kLeastRequest:
      return client.supports_least_request ? LbPolicy::kLeastRequest : LbPolicy::kRoundRobin;
  }
  return LbPolicy::kRoundRobin;
}

}  // namespace podlb::xds
