// ParsePodFault: the one parser of the podlb.io/fault-* annotations (the API server's validation
// and the pod runtime both use it) accepts what the contract allows and names each bad value.
#include "sandbox/pods/pod_fault.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace podlb::sandbox {
namespace {

using ::testing::HasSubstr;
using Annotations = std::map<std::string, std::string>;

PodFault Parse(const Annotations& annotations) {
  auto fault = ParsePodFault(annotations);
  EXPECT_TRUE(fault.ok()) << fault.status();
  return fault.value_or(PodFault{});
}

TEST(ParsePodFaultTest, NoFaultAnnotationsIsNoFault) {
  PodFault fault = Parse({{"kubectl.kubernetes.io/restartedAt", "2024-01-01T00:00:00Z"}});
  EXPECT_FALSE(fault.active());
  EXPECT_EQ(fault, PodFault{});
  EXPECT_EQ(fault.ToString(), "none");
}

TEST(ParsePodFaultTest, AcceptsDelays) {
  EXPECT_EQ(Parse({{kFaultDelayAnnotation, "25ms"}}).delay, absl::Milliseconds(25));
  EXPECT_EQ(Parse({{kFaultDelayAnnotation, "1.5s"}}).delay, absl::Milliseconds(1500));
  EXPECT_EQ(Parse({{kFaultDelayAnnotation, "1m30s"}}).delay, absl::Seconds(90));
  EXPECT_EQ(Parse({{kFaultDelayAnnotation, "1h"}}).delay, absl::Hours(1));
  PodFault zero = Parse({{kFaultDelayAnnotation, "0"}});
  EXPECT_EQ(zero.delay, absl::ZeroDuration());
  EXPECT_FALSE(zero.active());
}

TEST(ParsePodFaultTest, AcceptsErrorRatesAndCodes) {
  PodFault half = Parse({{kFaultErrorRateAnnotation, "0.5"}});
  EXPECT_DOUBLE_EQ(half.error_rate, 0.5);
  EXPECT_EQ(half.error_code, absl::StatusCode::kUnavailable);  // the default
  EXPECT_TRUE(half.active());
  EXPECT_DOUBLE_EQ(Parse({{kFaultErrorRateAnnotation, "1"}}).error_rate, 1.0);
  EXPECT_FALSE(Parse({{kFaultErrorRateAnnotation, "0"}}).active());
  for (auto [name, code] : std::vector<std::pair<std::string, absl::StatusCode>>{
           {"UNAVAILABLE", absl::StatusCode::kUnavailable},
           {"INTERNAL", absl::StatusCode::kInternal},
           {"RESOURCE_EXHAUSTED", absl::StatusCode::kResourceExhausted},
           {"DEADLINE_EXCEEDED", absl::StatusCode::kDeadlineExceeded},
           {"CANCELLED", absl::StatusCode::kCancelled},
           {"UNAUTHENTICATED", absl::StatusCode::kUnauthenticated},
           {"internal", absl::StatusCode::kInternal}}) {
    PodFault fault =
        Parse({{kFaultErrorRateAnnotation, "0.25"}, {kFaultErrorCodeAnnotation, name}});
    EXPECT_EQ(fault.error_code, code) << name;
  }
}

TEST(ParsePodFaultTest, AcceptsStuck) {
  EXPECT_TRUE(Parse({{kFaultStuckAnnotation, "true"}}).stuck);
  EXPECT_TRUE(Parse({{kFaultStuckAnnotation, "True"}}).stuck);
  EXPECT_FALSE(Parse({{kFaultStuckAnnotation, "false"}}).stuck);
}

TEST(ParsePodFaultTest, RejectsEachBadValueWithAPreciseMessage) {
  struct Case {
    const char* key;
    const char* value;
    const char* wanted;  // what the message says a good value is
  };
  const Case cases[] = {
      {kFaultDelayAnnotation, "abc", "must be a duration from 0 to 1h"},
      {kFaultDelayAnnotation, "-5ms", "must be a duration from 0 to 1h"},
      {kFaultDelayAnnotation, "2h", "must be a duration from 0 to 1h"},
      {kFaultDelayAnnotation, "inf", "must be a duration from 0 to 1h"},
      {kFaultDelayAnnotation, "25", "(ns, us, ms, s, m, h)"},
      {kFaultDelayAnnotation, "", "must be a duration"},
      {kFaultErrorRateAnnotation, "1.5", "must be a number from 0 to 1"},
      {kFaultErrorRateAnnotation, "x", "must be a number from 0 to 1"},
      {kFaultErrorRateAnnotation, "-0.1", "must be a number from 0 to 1"},
      {kFaultErrorRateAnnotation, "nan", "must be a number from 0 to 1"},
      {kFaultErrorCodeAnnotation, "NOPE", "must be the name of a gRPC status code other than OK"},
      {kFaultErrorCodeAnnotation, "OK", "other than OK: CANCELLED, UNKNOWN"},
      {kFaultErrorCodeAnnotation, "14", "UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED"},
      {kFaultStuckAnnotation, "maybe", "must be \"true\" or \"false\""},
      {kFaultStuckAnnotation, "1", "must be \"true\" or \"false\""},
  };
  for (const Case& c : cases) {
    auto fault = ParsePodFault({{c.key, c.value}});
    ASSERT_FALSE(fault.ok()) << c.key << "=" << c.value;
    EXPECT_EQ(fault.status().code(), absl::StatusCode::kInvalidArgument);
    std::string message(fault.status().message());
    EXPECT_THAT(message, ::testing::StartsWith(std::string(c.key) + ": invalid value \"" + c.value +
                                               "\": "));
    EXPECT_THAT(message, HasSubstr(c.wanted)) << c.key << "=" << c.value;

    auto violations = FindPodFaultViolations({{c.key, c.value}});
    ASSERT_EQ(violations.size(), 1u);
    EXPECT_EQ(violations[0].annotation, c.key);
    EXPECT_EQ(violations[0].value, c.value);
    EXPECT_THAT(violations[0].detail, HasSubstr(c.wanted));
  }
}

TEST(ParsePodFaultTest, NamesEveryBadAnnotationAndIgnoresOthers) {
  Annotations annotations = {{kFaultDelayAnnotation, "abc"},
                             {kFaultErrorRateAnnotation, "0.5"},
                             {kFaultErrorCodeAnnotation, "NOPE"},
                             {"podlb.io/lb-policy", "whatever"}};
  auto violations = FindPodFaultViolations(annotations);
  ASSERT_EQ(violations.size(), 2u);
  EXPECT_EQ(violations[0].annotation, kFaultDelayAnnotation);
  EXPECT_EQ(violations[1].annotation, kFaultErrorCodeAnnotation);
  auto fault = ParsePodFault(annotations);
  ASSERT_FALSE(fault.ok());
  EXPECT_THAT(std::string(fault.status().message()),
              HasSubstr("podlb.io/fault-delay: invalid value \"abc\""));
  EXPECT_THAT(std::string(fault.status().message()),
              HasSubstr("; podlb.io/fault-error-code: invalid value \"NOPE\""));
}

TEST(PodFaultAnnotationsTest, RoundTripsThroughTheParser) {
  PodFault fault;
  fault.delay = absl::Milliseconds(25);
  fault.error_rate = 0.5;
  fault.error_code = absl::StatusCode::kResourceExhausted;
  fault.stuck = true;
  Annotations annotations = PodFaultAnnotations(fault);
  EXPECT_EQ(annotations, (Annotations{{kFaultDelayAnnotation, "25ms"},
                                      {kFaultErrorRateAnnotation, "0.5"},
                                      {kFaultErrorCodeAnnotation, "RESOURCE_EXHAUSTED"},
                                      {kFaultStuckAnnotation, "true"}}));
  EXPECT_EQ(Parse(annotations), fault);
  EXPECT_EQ(fault.ToString(), "delay=25ms error-rate=0.5 error-code=RESOURCE_EXHAUSTED stuck");
  EXPECT_TRUE(PodFaultAnnotations(PodFault{}).empty());
  EXPECT_EQ(PodFaultAnnotationKeys().size(), 4u);
}

}  // namespace
}  // namespace podlb::sandbox
