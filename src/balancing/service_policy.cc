#include "balancing/service_policy.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace podlb::balancing {

std::string_view ToString(PolicyKind kind) {
  switch (kind) {
    case PolicyKind::kRoundRobin: return "round_robin";
    case PolicyKind::kLeastRequest: return "least_request";
    case PolicyKind::kPeakEwma: return "peak_ewma";
    case PolicyKind::kRingHash: return "ring_hash";
  }
  return "?";
}

std::optional<PolicyKind> ParsePolicyKind(std::string_view name) {
  std::string lower = absl::AsciiStrToLower(std::string(name));
  if (lower == "round_robin") return PolicyKind::kRoundRobin;
  if (lower == "least_request" || lower == "p2c") return PolicyKind::kLeastRequest;
  if (lower == "peak_ewma") return PolicyKind::kPeakEwma;
  if (lower == "ring_hash") return PolicyKind::kRingHash;
  return std::nullopt;
}

bool ServicePolicy::SameSettings(const ServicePolicy& other) const {
  return lb_policy == other.lb_policy && hash_header == other.hash_header &&
         timeout == other.timeout && retries_on_unavailable == other.retries_on_unavailable &&
         zone_aware == other.zone_aware &&
         panic_threshold_percent == other.panic_threshold_percent && outlier == other.outlier &&
         subset_size == other.subset_size;
}

ServicePolicy DataPathDefaults() {
  ServicePolicy policy;
  policy.lb_policy = PolicyKind::kPeakEwma;
  policy.outlier.enabled = true;
  // Three failures in a row: a stuck pod's first deadlines eject it (the proxy's rule since its
  // first release). Ejections are short at first (5 s, growing per repeat up to a minute) since
  // the proxy and the library see every call and re-eject a pod that is still bad at once;
  // Envoy's 30 s base suits a control plane that re-evaluates only every interval.
  policy.outlier.consecutive_failures = 3;
  policy.outlier.minimum_requests = 10;
  policy.outlier.base_ejection = absl::Seconds(5);
  policy.outlier.max_ejection = absl::Seconds(60);
  return policy;
}

namespace {

bool ParseBool(const std::string& text, bool* out) {
  std::string v = absl::AsciiStrToLower(text);
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

// Reads one annotation into `*out` if present; a bad value leaves `*out` and reports why.
class AnnotationReader {
 public:
  AnnotationReader(const std::map<std::string, std::string>& annotations,
                   std::vector<std::string>* problems)
      : annotations_(annotations), problems_(problems) {}

  const std::string* Get(const char* name) const {
    auto it = annotations_.find(name);
    return it == annotations_.end() ? nullptr : &it->second;
  }

  void Problem(const char* name, const std::string& value, std::string_view expected,
               std::string_view fallback) {
    problems_->push_back(std::string(name) + " \"" + value + "\" is not " + std::string(expected) +
                         "; using " + std::string(fallback));
  }

  void Bool(const char* name, bool* out) {
    const std::string* v = Get(name);
    if (v == nullptr) return;
    bool parsed;
    if (ParseBool(*v, &parsed)) {
      *out = parsed;
    } else {
      Problem(name, *v, "true or false", *out ? "true" : "false");
    }
  }

  void Uint(const char* name, uint32_t min, uint32_t max, uint32_t* out) {
    const std::string* v = Get(name);
    if (v == nullptr) return;
    uint32_t parsed;
    if (absl::SimpleAtoi(*v, &parsed) && parsed >= min && parsed <= max) {
      *out = parsed;
    } else {
      Problem(name, *v, absl::StrCat("a whole number ", min, "..", max), absl::StrCat(*out));
    }
  }

  // Accepts "2s", "500ms", "1m30s" (Go/absl duration syntax), strictly positive.
  void Duration(const char* name, absl::Duration* out) {
    const std::string* v = Get(name);
    if (v == nullptr) return;
    absl::Duration parsed;
    if (absl::ParseDuration(*v, &parsed) && parsed > absl::ZeroDuration()) {
      *out = parsed;
    } else {
      Problem(name, *v, "a positive duration such as 2s or 500ms", absl::FormatDuration(*out));
    }
  }

 private:
  const std::map<std::string, std::string>& annotations_;
  std::vector<std::string>* problems_;
};

}  // namespace

ServicePolicy ParseServicePolicy(const std::map<std::string, std::string>& annotations,
                                 const ServicePolicy& defaults) {
  ServicePolicy policy = defaults;
  policy.problems.clear();
  AnnotationReader read(annotations, &policy.problems);
  if (const std::string* v = read.Get(kLbPolicyAnnotation)) {
    if (v->empty()) {
      // An empty value is "unset": the remedy's default.
    } else if (auto kind = ParsePolicyKind(*v)) {
      policy.lb_policy = *kind;
    } else {
      read.Problem(kLbPolicyAnnotation, *v,
                   "round_robin, least_request, peak_ewma or ring_hash",
                   ToString(defaults.lb_policy));
    }
  }
  if (const std::string* v = read.Get(kHashHeaderAnnotation)) {
    std::string header = absl::AsciiStrToLower(*v);
    if (ValidHeaderName(header)) {
      policy.hash_header = header;
    } else {
      read.Problem(kHashHeaderAnnotation, *v, "a valid header name", defaults.hash_header);
    }
  }
  if (const std::string* v = read.Get(kTimeoutAnnotation)) {
    absl::Duration d;
    if (absl::ParseDuration(*v, &d) && d > absl::ZeroDuration()) {
      policy.timeout = d;
    } else {
      read.Problem(kTimeoutAnnotation, *v, "a positive duration such as 2s or 500ms",
                   defaults.timeout ? absl::FormatDuration(*defaults.timeout) : "no timeout");
    }
  }
  if (const std::string* v = read.Get(kRetryOnUnavailableAnnotation)) {
    bool on = false;
    uint32_t n = 0;
    if (absl::SimpleAtoi(*v, &n) && n <= 10) {
      policy.retries_on_unavailable = n;
    } else if (ParseBool(*v, &on)) {
      policy.retries_on_unavailable = on ? 2 : 0;
    } else {
      read.Problem(kRetryOnUnavailableAnnotation, *v, "true/false or a retry count 0..10",
                   absl::StrCat(defaults.retries_on_unavailable, " retries"));
    }
  }
  read.Bool(kZoneAwareAnnotation, &policy.zone_aware);
  read.Uint(kPanicThresholdAnnotation, 0, 100, &policy.panic_threshold_percent);
  OutlierPolicy& outlier = policy.outlier;
  read.Bool(kOutlierDetectionAnnotation, &outlier.enabled);
  read.Duration(kOutlierIntervalAnnotation, &outlier.interval);
  read.Uint(kOutlierConsecutiveAnnotation, 0, 1000, &outlier.consecutive_failures);
  read.Uint(kOutlierPercentageAnnotation, 0, 100, &outlier.failure_percentage);
  read.Uint(kOutlierMinRequestsAnnotation, 1, 1000000, &outlier.minimum_requests);
  read.Duration(kOutlierBaseEjectionAnnotation, &outlier.base_ejection);
  read.Duration(kOutlierMaxEjectionAnnotation, &outlier.max_ejection);
  read.Uint(kOutlierMaxPercentAnnotation, 0, 100, &outlier.max_ejection_percent);
  read.Uint(kSubsetSizeAnnotation, 0, 100000, &policy.subset_size);
  if (policy.subset_size > 0 && policy.lb_policy == PolicyKind::kRingHash) {
    policy.problems.push_back(absl::StrCat(
        kSubsetSizeAnnotation, " ", policy.subset_size,
        " does not apply to ring_hash (every client must map a key to the same pod); using all "
        "endpoints"));
    policy.subset_size = 0;
  }
  if (outlier.max_ejection < outlier.base_ejection) {
    policy.problems.push_back(absl::StrCat(
        kOutlierMaxEjectionAnnotation, " ", absl::FormatDuration(outlier.max_ejection),
        " is shorter than the base ejection ", absl::FormatDuration(outlier.base_ejection),
        "; using the base ejection as the maximum"));
    outlier.max_ejection = outlier.base_ejection;
  }
  return policy;
}

}  // namespace podlb::balancing
