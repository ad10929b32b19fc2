// Transparent retries: a stream the upstream refused without processing it (RST_STREAM
// REFUSED_STREAM, or above a GOAWAY's last-stream-id) goes to another endpoint, and the client
// never sees the failure. The refusing "pod" is h2_refuser.py (python3-h2).
#include <regex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/proxy_server.h"
#include "proxy/test_backend.h"
#include "support/process.h"

namespace podlb::proxy {
namespace {

using ::podlb::testing::ProxyStub;
using ::podlb::testing::TestBackend;

const ServiceKey kGreeter{"default", "greeter", "50051"};

class RetryTest : public ::testing::TestWithParam<std::string> {};

TEST_P(RetryTest, RefusedStreamsAreRetriedOnAnotherEndpoint) {
  testing::ChildProcess refuser({"/usr/bin/python3",
                                 testing::SourceDir() + "/tests/proxy/h2_refuser.py", "127.0.0.3",
                                 GetParam()});
  ASSERT_TRUE(refuser.WaitForLineContaining("listening", std::chrono::seconds(10)));
  std::smatch m;
  std::string line = refuser.Lines()[0];
  ASSERT_TRUE(std::regex_search(line, m, std::regex("listening (\\d+)")));
  Endpoint refusing;
  refusing.address = "127.0.0.3";
  refusing.port = static_cast<uint16_t>(std::stoi(m[1].str()));
  refusing.ready = refusing.serving = true;

  TestBackend good("pod-good", "127.0.0.2");
  Registry registry;
  registry.Publish({kGreeter}, {good.AsEndpoint(), refusing});
  ProxyOptions options;
  options.listeners.push_back({.host = "127.0.0.1", .port = 0, .service = kGreeter});
  // Round robin without ejection keeps picking the refuser: every second pick must be retried.
  options.balancing.lb_policy = balancing::PolicyKind::kRoundRobin;
  options.balancing.outlier.enabled = false;
  ProxyServer proxy(options, registry);
  ASSERT_TRUE(proxy.Start().ok());
  auto stub = ProxyStub(proxy.ports()[0]);
  for (int i = 0; i < 40; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    grpc::Status status = stub->UnaryCall(&context, request, &response);
    ASSERT_TRUE(status.ok()) << i << ": " << status.error_message();
    EXPECT_EQ(response.hostname(), "pod-good");
  }
  EXPECT_THAT(proxy.stats().Render(),
              ::testing::ContainsRegex("podlb_proxy_upstream_retries_total\\{service=\"default/"
                                       "greeter:50051\",endpoint=\"127.0.0.3:[0-9]+\"\\} [1-9]"));
}

INSTANTIATE_TEST_SUITE_P(RefuseAndGoaway, RetryTest, ::testing::Values("refuse", "goaway"));

}  // namespace
}  // namespace podlb::proxy
