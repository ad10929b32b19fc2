// LogThrottle: a frequent event leaves one line per interval, and the next line says how many
// were left out.
#include "core/logging.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace podlb {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(LogThrottleTest, FirstLinePassesThenOnePerIntervalWithTheCountLeftOut) {
  LogThrottle throttle(LogLevel::kInfo, absl::Seconds(10));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  auto first = throttle.Admit("handshake with a failed", t0);
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(*first, "handshake with a failed");
  // Within the interval: counted, not logged.
  EXPECT_FALSE(throttle.Admit("handshake with b failed", t0 + absl::Seconds(1)).has_value());
  EXPECT_FALSE(throttle.Admit("handshake with c failed", t0 + absl::Seconds(9)).has_value());
  // The interval is over: the next line says how many were left out.
  auto next = throttle.Admit("handshake with d failed", t0 + absl::Seconds(10));
  ASSERT_TRUE(next.has_value());
  EXPECT_THAT(*next, HasSubstr("handshake with d failed"));
  EXPECT_THAT(*next, HasSubstr("and 2 more like it"));
  // The count starts again: a line after a quiet interval carries none.
  auto quiet = throttle.Admit("handshake with e failed", t0 + absl::Seconds(60));
  ASSERT_TRUE(quiet.has_value());
  EXPECT_THAT(*quiet, Not(HasSubstr("more like it")));
}

}  // namespace
}  // namespace podlb
