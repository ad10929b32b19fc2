// grpc-timeout parsing and grpc-message encoding (pure functions of the proxy and ADS data paths).
#include "h2/grpc_util.h"

#include "gtest/gtest.h"
#include "proxy/byte_queue.h"

namespace podlb::proxy {
namespace {

using h2::ParseGrpcTimeout;
using h2::PercentEncode;

using std::chrono::nanoseconds;

TEST(GrpcUtilTest, ParsesEveryTimeoutUnit) {
  EXPECT_EQ(*ParseGrpcTimeout("2H"), std::chrono::hours(2));
  EXPECT_EQ(*ParseGrpcTimeout("3M"), std::chrono::minutes(3));
  EXPECT_EQ(*ParseGrpcTimeout("5S"), std::chrono::seconds(5));
  EXPECT_EQ(*ParseGrpcTimeout("100m"), std::chrono::milliseconds(100));
  EXPECT_EQ(*ParseGrpcTimeout("7u"), std::chrono::microseconds(7));
  EXPECT_EQ(*ParseGrpcTimeout("99999999n"), nanoseconds(99999999));
}

TEST(GrpcUtilTest, RejectsMalformedTimeouts) {
  for (const char* bad : {"", "S", "5", "5s", "-5S", "1x", "123456789S", "1.5S"})
    EXPECT_FALSE(ParseGrpcTimeout(bad).has_value()) << bad;
}

TEST(GrpcUtilTest, PercentEncodesGrpcMessage) {
  EXPECT_EQ(PercentEncode("plain text"), "plain text");
  EXPECT_EQ(PercentEncode("100%\n\xc3\xa9"), "100%25%0A%C3%A9");
}

TEST(ByteQueueTest, AppendsPopsAndCompacts) {
  ByteQueue q;
  std::string chunk(100'000, 'a');
  q.Append(reinterpret_cast<const uint8_t*>(chunk.data()), chunk.size());
  q.Append(reinterpret_cast<const uint8_t*>("xyz"), 3);
  q.Pop(100'000);
  ASSERT_EQ(q.size(), 3u);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(q.data()), 3), "xyz");
  q.Pop(3);
  EXPECT_TRUE(q.empty());
}

}  // namespace
}  // namespace podlb::proxy
