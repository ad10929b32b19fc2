// ServicePolicy: how one Service asks to be balanced, read from its `podlb.io/*` annotations on
// top of the defaults a remedy was started with (CLI flags, ChannelOptions). One parser, read by
// the control plane, the proxy and the library alike, so a Service behaves the same whichever
// remedy a client uses. Pure values and functions: callable from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace podlb::balancing {

// The balancing policies, by the names the annotation and the flags use.
enum class PolicyKind { kRoundRobin, kLeastRequest, kPeakEwma, kRingHash };
std::string_view ToString(PolicyKind kind);
// "round_robin", "least_request", "peak_ewma", "ring_hash" (case-insensitive); also "p2c" for
// least_request, the name the first libpodlb and proxy releases used.
std::optional<PolicyKind> ParsePolicyKind(std::string_view name);

inline constexpr char kLbPolicyAnnotation[] = "podlb.io/lb-policy";
inline constexpr char kHashHeaderAnnotation[] = "podlb.io/hash-header";
inline constexpr char kTimeoutAnnotation[] = "podlb.io/timeout";
inline constexpr char kRetryOnUnavailableAnnotation[] = "podlb.io/retry-on-unavailable";
inline constexpr char kZoneAwareAnnotation[] = "podlb.io/zone-aware";
inline constexpr char kPanicThresholdAnnotation[] = "podlb.io/panic-threshold";
inline constexpr char kOutlierDetectionAnnotation[] = "podlb.io/outlier-detection";
inline constexpr char kOutlierIntervalAnnotation[] = "podlb.io/outlier-interval";
inline constexpr char kOutlierConsecutiveAnnotation[] = "podlb.io/outlier-consecutive-failures";
inline constexpr char kOutlierPercentageAnnotation[] = "podlb.io/outlier-failure-percentage";
inline constexpr char kOutlierMinRequestsAnnotation[] = "podlb.io/outlier-minimum-requests";
inline constexpr char kOutlierBaseEjectionAnnotation[] = "podlb.io/outlier-base-ejection";
inline constexpr char kOutlierMaxEjectionAnnotation[] = "podlb.io/outlier-max-ejection";
inline constexpr char kOutlierMaxPercentAnnotation[] = "podlb.io/outlier-max-ejection-percent";
inline constexpr char kSubsetSizeAnnotation[] = "podlb.io/subset-size";
inline constexpr char kDefaultHashHeader[] = "x-podlb-hash-key";

// Passive outlier detection (Envoy's and gRFC A50's model, one set of knobs for all remedies).
struct OutlierPolicy {
  bool enabled = false;
  // Window for the failure-percentage rule; also the xDS `interval` (how often gRPC clients
  // evaluate and eject, so it bounds how fast an xDS client can react).
  absl::Duration interval = absl::Seconds(10);
  uint32_t consecutive_failures = 5;  // 0: rule off
  uint32_t failure_percentage = 50;   // 0: rule off; 1..100
  uint32_t minimum_requests = 20;     // per window, before the percentage rule may eject
  // Ejection time grows with each repeat: base × (times ejected), at most max. Envoy's and
  // gRPC's defaults; the proxy and the library use shorter ones (DataPathDefaults).
  absl::Duration base_ejection = absl::Seconds(30);
  absl::Duration max_ejection = absl::Seconds(300);
  // Never more than this share of the Service's endpoints ejected at once; at least one may
  // always be ejected (Envoy behaves the same), so a 2-pod Service can still shed a bad pod.
  uint32_t max_ejection_percent = 50;
  bool operator==(const OutlierPolicy&) const = default;
};

struct ServicePolicy {
  PolicyKind lb_policy = PolicyKind::kRoundRobin;
  std::string hash_header = kDefaultHashHeader;  // ring_hash only
  std::optional<absl::Duration> timeout;
  uint32_t retries_on_unavailable = 0;  // 0: no retries
  bool zone_aware = false;
  // Below this share (percent) of healthy local endpoints, calls spread over every zone
  // (Envoy's healthy_panic_threshold default: 50).
  uint32_t panic_threshold_percent = 50;
  OutlierPolicy outlier;
  // Each client (a proxy, a library channel) connects to about this many of the Service's
  // endpoints instead of all of them (src/balancing/subset.h); 0: all. Not applied to ring_hash,
  // which needs every client to map a key to the same pod.
  uint32_t subset_size = 0;
  // One line per annotation that could not be used (logged once per change by the caller).
  std::vector<std::string> problems;

  // Equal settings (ignores `problems`).
  bool SameSettings(const ServicePolicy& other) const;
};

// What a Service's annotations make of `defaults`. An annotation that is present and valid wins;
// a malformed or unknown one keeps the default and adds a line to `problems`.
ServicePolicy ParseServicePolicy(const std::map<std::string, std::string>& annotations,
                                 const ServicePolicy& defaults = {});

// The defaults of the proxy and the library: peak_ewma with outlier ejection on (a pod that is
// up but bad should lose its traffic without anyone annotating anything). Each remedy passes its
// own flags on top of these.
ServicePolicy DataPathDefaults();

}  // namespace podlb::balancing
