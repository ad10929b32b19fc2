// Hostile HTTP/2 input against the proxy, crafted frame by frame by h2_attacks.py (python3-h2):
// rapid reset (CVE-2023-44487), SETTINGS and PING floods, oversized header lists, too many
// streams, no preface, idle connections, and grpc-timeout enforcement by the proxy itself.
// After each, the proxy is still up and a well-behaved grpc++ client is served.
#include <regex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/proxy_server.h"
#include "proxy/test_backend.h"
#include "support/attack_script.h"

namespace podlb::proxy {
namespace {

using ::podlb::testing::ProxyStub;
using ::podlb::testing::TestBackend;
using ::testing::HasSubstr;

const ServiceKey kGreeter{"default", "greeter", "50051"};

class HostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    backend_ = std::make_unique<TestBackend>("pod-0", "127.0.0.2");
    registry_.Publish({kGreeter}, {backend_->AsEndpoint()});
    ProxyOptions options;
    options.listeners.push_back({.host = "127.0.0.1", .port = 0, .service = kGreeter});
    options.max_concurrent_streams = 10;
    options.max_header_list_bytes = 8 * 1024;
    options.handshake_timeout = std::chrono::milliseconds(500);
    options.idle_timeout = std::chrono::milliseconds(1000);
    proxy_ = std::make_unique<ProxyServer>(options, registry_);
    ASSERT_TRUE(proxy_->Start().ok());
  }

  // Runs one scenario; returns its RESULT line.
  std::string Attack(const std::string& scenario) {
    return testing::RunAttackScript("tests/proxy/h2_attacks.py", proxy_->ports()[0], scenario);
  }

  void ExpectStillServing() {
    auto stub = ProxyStub(proxy_->ports()[0]);
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    grpc::Status status = stub->UnaryCall(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.hostname(), "pod-0");
  }

  Registry registry_;
  std::unique_ptr<TestBackend> backend_;
  std::unique_ptr<ProxyServer> proxy_;
};

TEST_F(HostileInputTest, RawClientIsServed) { EXPECT_EQ(Attack("unary"), "status=0"); }

TEST_F(HostileInputTest, RapidResetFloodGetsEnhanceYourCalm) {
  std::string result = Attack("rapid_reset");
  EXPECT_THAT(result, HasSubstr("goaway=11")) << result;
  EXPECT_GE(proxy_->stats().flood_goaways_total.load(), 1u);
  ExpectStillServing();
}

TEST_F(HostileInputTest, SettingsFloodGetsEnhanceYourCalm) {
  std::string result = Attack("settings_flood");
  EXPECT_THAT(result, HasSubstr("goaway=11")) << result;
  ExpectStillServing();
}

TEST_F(HostileInputTest, PingFloodGetsEnhanceYourCalm) {
  std::string result = Attack("ping_flood");
  EXPECT_THAT(result, HasSubstr("goaway=11")) << result;
  ExpectStillServing();
}

TEST_F(HostileInputTest, OversizedHeaderListResetsOnlyThatStream) {
  std::string result = Attack("big_headers");
  EXPECT_THAT(result, HasSubstr("big=rst:")) << result;
  EXPECT_THAT(result, HasSubstr("next=0")) << result;
  ExpectStillServing();
}

TEST_F(HostileInputTest, StreamsAboveTheLimitAreRefused) {
  std::string result = Attack("too_many_streams");
  EXPECT_THAT(result, ::testing::AnyOf(HasSubstr("refused=10"), HasSubstr("goaway=1 last=19")))
      << result;
  ExpectStillServing();
}

TEST_F(HostileInputTest, ConnectionWithoutPrefaceIsClosed) {
  std::string result = Attack("no_preface");
  std::smatch m;
  std::regex seconds("closed_after=([0-9.]+)");
  ASSERT_TRUE(std::regex_search(result, m, seconds)) << result;
  EXPECT_LT(std::stod(m[1].str()), 3.0) << result;
  ExpectStillServing();
}

TEST_F(HostileInputTest, IdleConnectionGetsGoaway) {
  std::string result = Attack("idle");
  EXPECT_THAT(result, HasSubstr("goaway=0")) << result;
  ExpectStillServing();
}

TEST_F(HostileInputTest, ProxyEnforcesGrpcTimeout) {
  EXPECT_EQ(Attack("grpc_timeout"), "status=4");
  EXPECT_TRUE(testing::WaitFor([&] { return backend_->cancelled() == 1; }, std::chrono::seconds(5),
                               "the upstream call to be cancelled"));
  // The backend sees grpc-timeout too and may answer DEADLINE_EXCEEDED first; either way the
  // caller gets status 4 even though it set no deadline of its own.
}

}  // namespace
}  // namespace podlb::proxy
