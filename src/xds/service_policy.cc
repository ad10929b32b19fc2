#include "xds/service_policy.h"

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

namespace {

std::string Lower(const std::string& s) { return absl::AsciiStrToLower(s); }

bool ParseBool(const std::string& text, bool* out) {
  std::string v = Lower(text);
  if (v == "true" || v == "1" || v == "yes") {
    *out = true;
    return true;
  }
  if (v == "false" || v == "0" || v == "no" || v.empty()) {
    *out = false;
    return true;
  }
  return false;
}

// RFC 7230 token characters, lower case (gRPC clients match header names in lower case).
bool ValidHeaderName(const std::string& name) {
  if (name.empty() || name[0] == ':') return false;
  for (char c : name) {
    if (!(absl::ascii_islower(c) || absl::ascii_isdigit(c) || c == '-' || c == '_' || c == '.'))
      return false;
  }
  return true;
}

}  // namespace

ServicePolicy ParseServicePolicy(const std::map<std::string, std::string>& annotations) {
  ServicePolicy policy;
  auto get = [&](const char* name) -> const std::string* {
    auto it = annotations.find(name);
    return it == annotations.end() ? nullptr : &it->second;
  };
  if (const std::string* v = get(kLbPolicyAnnotation)) {
    std::string p = Lower(*v);
    if (p == "round_robin" || p.empty()) {
      policy.lb_policy = LbPolicy::kRoundRobin;
    } else if (p == "ring_hash") {
      policy.lb_policy = LbPolicy::kRingHash;
    } else if (p == "least_request") {
      policy.lb_policy = LbPolicy::kLeastRequest;
    } else {
      policy.problems.push_back(std::string(kLbPolicyAnnotation) + " \"" + *v +
                                "\" is not round_robin, ring_hash or least_request; "
                                "using round_robin");
    }
  }
  if (const std::string* v = get(kHashHeaderAnnotation)) {
    std::string h = Lower(*v);
    if (ValidHeaderName(h)) {
      policy.hash_header = h;
    } else {
      policy.problems.push_back(std::string(kHashHeaderAnnotation) + " \"" + *v +
                                "\" is not a valid header name; using " + kDefaultHashHeader);
    }
  }
  if (const std::string* v = get(kTimeoutAnnotation)) {
    absl::Duration d;
    if (absl::ParseDuration(*v, &d) && d > absl::ZeroDuration()) {
      policy.timeout = d;
    } else {
      policy.problems.push_back(std::string(kTimeoutAnnotation) + " \"" + *v +
                                "\" is not a positive duration such as 2s or 500ms; no timeout");
    }
  }
  if (const std::string* v = get(kRetryOnUnavailableAnnotation)) {
    bool on = false;
    uint32_t n = 0;
    if (absl::SimpleAtoi(*v, &n) && n <= 10) {
      policy.retries_on_unavailable = n;
    } else if (ParseBool(*v, &on)) {
      policy.retries_on_unavailable = on ? 2 : 0;
    } else {
      policy.problems.push_back(std::string(kRetryOnUnavailableAnnotation) + " \"" + *v +
                                "\" is neither true/false nor a retry count 0..10; no retries");
    }
  }
  if (const std::string* v = get(kZoneAwareAnnotation)) {
    if (!ParseBool(*v, &policy.zone_aware))
      policy.problems.push_back(std::string(kZoneAwareAnnotation) + " \"" + *v +
                                "\" is not true or false; zone awareness off");
  }
  if (const std::string* v = get(kOutlierDetectionAnnotation)) {
    if (!ParseBool(*v, &policy.outlier_detection))
      policy.problems.push_back(std::string(kOutlierDetectionAnnotation) + " \"" + *v +
                                "\" is not true or false; outlier detection off");
  }
  return policy;
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
    case LbPolicy::kRoundRobin: return LbPolicy::kRoundRobin;
    case LbPolicy::kRingHash:
      return client.supports_ring_hash ? LbPolicy::kRingHash : LbPolicy::kRoundRobin;
    case LbPolicy::kLeastRequest:
      return client.supports_least_request ? LbPolicy::kLeastRequest : LbPolicy::kRoundRobin;
  }
  return LbPolicy::kRoundRobin;
}

}  // namespace podlb::xds
