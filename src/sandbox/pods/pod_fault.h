// PodFault: what the sandbox makes a pod do wrong (slow, failing, stuck), and the podlb.io/fault-*
// Pod annotations that say so. The one parser of those annotations: the API server rejects bad
// values with it (422) and the pod runtime applies good ones with it, so they cannot disagree.
// Pure functions, any thread.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "nlohmann/json.hpp"

namespace podlb::sandbox {

inline constexpr char kFaultDelayAnnotation[] = "podlb.io/fault-delay";
inline constexpr char kFaultErrorRateAnnotation[] = "podlb.io/fault-error-rate";
inline constexpr char kFaultErrorCodeAnnotation[] = "podlb.io/fault-error-code";
inline constexpr char kFaultStuckAnnotation[] = "podlb.io/fault-stuck";

// The longest delay a pod accepts: longer is almost surely a typo ("25m" for "25ms"), and a call
// held that long outlives any sensible client deadline anyway.
inline constexpr absl::Duration kMaxFaultDelay = absl::Hours(1);

// Applies to every grpc.testing.TestService call of the pod, never to its health service: a
// faulty pod stays ready, which is what makes these faults hard for a load balancer.
struct PodFault {
  absl::Duration delay = absl::ZeroDuration();  // added before the call is answered
  double error_rate = 0;                        // share of calls answered with error_code, 0..1
  absl::StatusCode error_code = absl::StatusCode::kUnavailable;  // same numbers as gRPC's codes
  bool stuck = false;  // calls are never answered (until the client gives up or the fault clears)

  bool active() const { return stuck || error_rate > 0 || delay > absl::ZeroDuration(); }
  // "delay=25ms error-rate=0.5 error-code=UNAVAILABLE stuck", or "none".
  std::string ToString() const;
  friend bool operator==(const PodFault&, const PodFault&) = default;
};

// One annotation with a value the sandbox cannot use.
struct PodFaultViolation {
  std::string annotation;  // e.g. podlb.io/fault-delay
  std::string value;       // as given
  std::string detail;      // what a good value looks like
};

// Every podlb.io/fault-* annotation among `annotations` whose value is not usable; empty when all
// are (or there are none). Other annotations are ignored.
std::vector<PodFaultViolation> FindPodFaultViolations(
    const std::map<std::string, std::string>& annotations);

// The fault the annotations describe; no fault annotation at all is the empty fault.
// InvalidArgument naming each bad annotation, its value and what would be accepted.
absl::StatusOr<PodFault> ParsePodFault(const std::map<std::string, std::string>& annotations);

// The string-valued annotations of an ObjectMeta (JSON), the input ParsePodFault takes; other
// values are left out (the API server only stores strings there).
std::map<std::string, std::string> AnnotationsOf(const nlohmann::json& metadata);

// The inverse of ParsePodFault: the fault annotations that describe `fault` (none for the empty
// fault). Keys of PodFaultAnnotationKeys() absent from the result are meant to be removed.
std::map<std::string, std::string> PodFaultAnnotations(const PodFault& fault);
const std::vector<std::string>& PodFaultAnnotationKeys();

// gRPC's name of a status code ("UNAVAILABLE"); the parser accepts these names.
std::string StatusCodeName(absl::StatusCode code);

}  // namespace podlb::sandbox
