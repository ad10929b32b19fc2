// Errors of the proxy library name the option that is wrong (ProxyOptions::...,
// UpstreamTlsOptions::...), never a command-line flag: the library has no flags; the CLI maps
// option names to its own flags.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "core/registry.h"
#include "proxy/proxy_server.h"
#include "h2/tls.h"

namespace podlb::proxy {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(OptionErrorsTest, NoListenerNamesProxyOptionsListeners) {
  Registry registry;
  ProxyOptions options;
  ProxyServer server(options, registry);
  absl::Status status = server.Start();
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("ProxyOptions::listeners is empty"));
  EXPECT_THAT(std::string(status.message()), Not(HasSubstr("--")));
}

TEST(OptionErrorsTest, UpstreamTlsErrorsNameTheirOptions) {
  auto half = MakeClientTlsContext({.enabled = true, .cert_file = "/x.pem"});
  ASSERT_FALSE(half.ok());
  EXPECT_THAT(std::string(half.status().message()),
              HasSubstr("UpstreamTlsOptions::cert_file and UpstreamTlsOptions::key_file go "
                        "together"));
  auto ca = MakeClientTlsContext({.enabled = true, .ca_file = "/nonexistent/ca.pem"});
  ASSERT_FALSE(ca.ok());
  EXPECT_THAT(std::string(ca.status().message()),
              HasSubstr("cannot load UpstreamTlsOptions::ca_file /nonexistent/ca.pem"));
  auto server = MakeServerTlsContext("/nonexistent/cert.pem", "/nonexistent/key.pem");
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(std::string(server.status().message()),
              HasSubstr("cannot load ProxyOptions::tls_cert_file /nonexistent/cert.pem"));
  for (const auto* status : {&half.status(), &ca.status(), &server.status()})
    EXPECT_THAT(std::string(status->message()), Not(HasSubstr("--")));
}

}  // namespace
}  // namespace podlb::proxy
