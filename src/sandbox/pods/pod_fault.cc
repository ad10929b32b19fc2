#include "sandbox/pods/pod_fault.h"

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace podlb::sandbox {
namespace {

// gRPC's codes other than OK; absl::StatusCode has the same numbers and names.
constexpr int kFirstErrorCode = 1;  // CANCELLED
constexpr int kLastErrorCode = 16;  // UNAUTHENTICATED

std::string ErrorCodeNames() {
  std::vector<std::string> names;
  for (int code = kFirstErrorCode; code <= kLastErrorCode; ++code) {
    names.push_back(StatusCodeName(static_cast<absl::StatusCode>(code)));
  }
  return absl::StrJoin(names, ", ");
}

// Each parser returns the detail of a violation, or the parsed value through `out`.
std::optional<std::string> ParseDelay(const std::string& text, absl::Duration* out) {
  constexpr char kWanted[] =
      "must be a duration from 0 to 1h, a number with a unit (ns, us, ms, s, m, h) such as "
      "\"25ms\" or \"1.5s\"";
  absl::Duration delay;
  if (!absl::ParseDuration(text, &delay)) return kWanted;
  // ParseDuration also accepts "inf" and negative values.
  if (delay < absl::ZeroDuration() || delay > kMaxFaultDelay) return kWanted;
  *out = delay;
  return std::nullopt;
}

std::optional<std::string> ParseErrorRate(const std::string& text, double* out) {
  double rate = 0;
  // The negated comparison also rejects NaN.
  if (!absl::SimpleAtod(text, &rate) || !(rate >= 0 && rate <= 1)) {
    return "must be a number from 0 to 1, the share of calls that fail (e.g. \"0.5\")";
  }
  *out = rate;
  return std::nullopt;
}

std::optional<std::string> ParseErrorCode(const std::string& text, absl::StatusCode* out) {
  std::string upper = absl::AsciiStrToUpper(text);
  for (int code = kFirstErrorCode; code <= kLastErrorCode; ++code) {
    auto status_code = static_cast<absl::StatusCode>(code);
    if (upper == StatusCodeName(status_code)) {
      *out = status_code;
      return std::nullopt;
    }
  }
  return "must be the name of a gRPC status code other than OK: " + ErrorCodeNames();
}

std::optional<std::string> ParseStuck(const std::string& text, bool* out) {
  std::string lower = absl::AsciiStrToLower(text);
  if (lower != "true" && lower != "false") return "must be \"true\" or \"false\"";
  *out = lower == "true";
  return std::nullopt;
}

// Parses every fault annotation present; violations are appended, good values land in `fault`.
PodFault Parse(const std::map<std::string, std::string>& annotations,
               std::vector<PodFaultViolation>* violations) {
  PodFault fault;
  auto check = [&](const char* key, auto parse, auto* field) {
    auto it = annotations.find(key);
    if (it == annotations.end()) return;
    if (auto detail = parse(it->second, field)) violations->push_back({key, it->second, *detail});
  };
  check(kFaultDelayAnnotation, ParseDelay, &fault.delay);
  check(kFaultErrorRateAnnotation, ParseErrorRate, &fault.error_rate);
  check(kFaultErrorCodeAnnotation, ParseErrorCode, &fault.error_code);
  check(kFaultStuckAnnotation, ParseStuck, &fault.stuck);
  return fault;
}

}  // namespace

std::string StatusCodeName(absl::StatusCode code) { return absl::StatusCodeToString(code); }

std::string PodFault::ToString() const {
  std::vector<std::string> parts;
  if (delay > absl::ZeroDuration()) parts.push_back("delay=" + absl::FormatDuration(delay));
  if (error_rate > 0) {
    parts.push_back(absl::StrCat("error-rate=", error_rate));
    parts.push_back("error-code=" + StatusCodeName(error_code));
  }
  if (stuck) parts.push_back("stuck");
  return parts.empty() ? "none" : absl::StrJoin(parts, " ");
}

std::vector<PodFaultViolation> FindPodFaultViolations(
    const std::map<std::string, std::string>& annotations) {
  std::vector<PodFaultViolation> violations;
  Parse(annotations, &violations);
  return violations;
}

absl::StatusOr<PodFault> ParsePodFault(const std::map<std::string, std::string>& annotations) {
  std::vector<PodFaultViolation> violations;
  PodFault fault = Parse(annotations, &violations);
  if (violations.empty()) return fault;
  std::vector<std::string> messages;
  for (const auto& v : violations) {
    messages.push_back(absl::StrCat(v.annotation, ": invalid value \"", v.value, "\": ", v.detail));
  }
  return absl::InvalidArgumentError(absl::StrJoin(messages, "; "));
}

std::map<std::string, std::string> AnnotationsOf(const nlohmann::json& metadata) {
  std::map<std::string, std::string> annotations;
  if (!metadata.is_object()) return annotations;
  auto given = metadata.find("annotations");
  if (given == metadata.end() || !given->is_object()) return annotations;
  for (const auto& [key, value] : given->items()) {
    if (value.is_string()) annotations[key] = value.get<std::string>();
  }
  return annotations;
}

std::map<std::string, std::string> PodFaultAnnotations(const PodFault& fault) {
  std::map<std::string, std::string> annotations;
  if (fault.delay > absl::ZeroDuration()) {
    annotations[kFaultDelayAnnotation] = absl::FormatDuration(fault.delay);
  }
  if (fault.error_rate > 0) {
    annotations[kFaultErrorRateAnnotation] = absl::StrCat(fault.error_rate);
    annotations[kFaultErrorCodeAnnotation] = StatusCodeName(fault.error_code);
  }
  if (fault.stuck) annotations[kFaultStuckAnnotation] = "true";
  return annotations;
}

const std::vector<std::string>& PodFaultAnnotationKeys() {
  static const std::vector<std::string>* const kKeys =
      new std::vector<std::string>{kFaultDelayAnnotation, kFaultErrorRateAnnotation,
                                   kFaultErrorCodeAnnotation, kFaultStuckAnnotation};
  return *kKeys;
}

}  // namespace podlb::sandbox
