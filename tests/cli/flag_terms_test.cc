// The CLI speaks in flags: library errors name options (`ProxyOptions::listeners`,
// `UpstreamTlsOptions::cert_file`), and every command prints them with the flag that sets the
// option instead. Also `--version`, which must print the version project(VERSION) declares.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "support/process.h"

namespace podlb::cli {
namespace {

using ::podlb::testing::PodlbBinary;
using ::podlb::testing::RunCommand;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(VersionTest, PrintsTheProjectVersion) {
  std::string output;
  ASSERT_EQ(RunCommand({PodlbBinary(), "--version"}, &output), 0) << output;
  EXPECT_EQ(output, std::string("podlb ") + PODLB_EXPECTED_VERSION + "\n");
}

TEST(FlagTermsTest, ProxyErrorsNameTheFlagNotTheOption) {
  ::podlb::testing::TempDir dir;
  const std::string endpoints = dir.path() + "/endpoints.yaml";
  ::podlb::testing::WriteFile(endpoints, "services: []\n");
  std::string output;
  // Discovery starts, then the proxy fails to load its serving certificate (ProxyServer::Start).
  EXPECT_EQ(RunCommand({PodlbBinary(), "proxy", "--file", endpoints, "--listen",
                        "127.0.0.1:0=default/greeter:1", "--admin", "", "--tls-cert",
                        "/nonexistent/cert.pem", "--tls-key", "/nonexistent/key.pem"},
                       &output),
            1);
  EXPECT_THAT(output, HasSubstr("cannot load --tls-cert /nonexistent/cert.pem / --tls-key "
                                "/nonexistent/key.pem"));
  EXPECT_THAT(output, Not(HasSubstr("Options::")));

  EXPECT_EQ(RunCommand({PodlbBinary(), "proxy", "--file", "/dev/null", "--listen",
                        "127.0.0.1:0=default/greeter:1", "--admin", "", "--upstream-key",
                        "/x.pem"},
                       &output),
            2);
  EXPECT_THAT(output, HasSubstr("--upstream-cert and --upstream-key go together"));
  EXPECT_THAT(output, Not(HasSubstr("Options::")));
}

TEST(FlagTermsTest, ListenAddressesFollowTheHostPortRules) {
  std::string output;
  EXPECT_EQ(RunCommand({PodlbBinary(), "proxy", "--file", "/dev/null", "--listen", "::1:0",
                        "--admin", ""},
                       &output),
            2);
  EXPECT_THAT(output, HasSubstr("--listen ::1:0: \"::1:0\": an IPv6 address goes in brackets: "
                                "[::1]:0"));
  EXPECT_EQ(RunCommand({PodlbBinary(), "proxy", "--file", "/dev/null", "--listen",
                        "127.0.0.1:http", "--admin", ""},
                       &output),
            2);
  EXPECT_THAT(output, HasSubstr("port \"http\" is not a number from 0 to 65535"));
}

}  // namespace
}  // namespace podlb::cli
