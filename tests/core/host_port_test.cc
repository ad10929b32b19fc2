// ParseHostPort / FormatHostPort: the one HOST:PORT grammar (IPv6 in brackets), and an error
// that says what is wrong for each kind of bad input.
#include "core/host_port.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace podlb {
namespace {

using ::testing::HasSubstr;

TEST(HostPortTest, ParsesNamesIPv4AndBracketedIPv6) {
  auto name = ParseHostPort("greeter.default.svc.cluster.local:50051");
  ASSERT_TRUE(name.ok()) << name.status();
  EXPECT_EQ(name->host, "greeter.default.svc.cluster.local");
  EXPECT_EQ(name->port, 50051);
  auto v4 = ParseHostPort("127.0.0.1:0");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 0);
  auto v6 = ParseHostPort("[::1]:9901");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 9901);
  auto top = ParseHostPort("[fe80::1%eth0]:65535");
  ASSERT_TRUE(top.ok()) << top.status();
  EXPECT_EQ(top->host, "fe80::1%eth0");
  EXPECT_EQ(top->port, 65535);
}

TEST(HostPortTest, EachMistakeGetsItsOwnError) {
  struct Case {
    const char* text;
    const char* expected;
  } cases[] = {
      {"", "empty; write HOST:PORT"},
      {"localhost", "\"localhost\": no port; write HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080"},
      {":80", "no host before ':'"},
      {"::1:80", "an IPv6 address goes in brackets: [::1]:80"},
      {"[::1:80", "'[' without its ']'"},
      {"[]:80", "no address between '[' and ']'"},
      {"[::1]", "no port after ']'"},
      {"[::1]80", "no port after ']'"},
      {"[127.0.0.1]:80", "brackets are for IPv6 addresses"},
      {"host:", "port \"\" is not a number from 0 to 65535"},
      {"host:http", "port \"http\" is not a number"},
      {"host:65536", "port \"65536\" is not a number from 0 to 65535"},
      {"host:-1", "port \"-1\" is not a number"},
      {"host:+80", "port \"+80\" is not a number"},
      {"host: 80", "port \" 80\" is not a number"},
  };
  for (const Case& c : cases) {
    auto parsed = ParseHostPort(c.text);
    ASSERT_FALSE(parsed.ok()) << c.text;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument) << c.text;
    EXPECT_THAT(std::string(parsed.status().message()), HasSubstr(c.expected)) << c.text;
  }
}

TEST(HostPortTest, FormatIsTheInverse) {
  EXPECT_EQ(FormatHostPort("10.0.0.7", 8080), "10.0.0.7:8080");
  EXPECT_EQ(FormatHostPort("::1", 80), "[::1]:80");
  for (const char* text : {"10.0.0.7:8080", "[::1]:80", "greeter.default:50051"}) {
    auto parsed = ParseHostPort(text);
    ASSERT_TRUE(parsed.ok()) << text;
    EXPECT_EQ(FormatHostPort(parsed->host, parsed->port), text);
  }
}

}  // namespace
}  // namespace podlb
