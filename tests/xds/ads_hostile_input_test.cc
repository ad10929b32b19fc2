// Malformed and hostile input against the ADS server, crafted frame by frame by ads_attacks.py
// (python3-h2): compressed, oversized and non-protobuf messages, a wrong content-type, unknown
// methods, a half-closing client, rapid reset, HTTP/1.1 instead of the preface, and a connection
// that never speaks. Each gets its precise answer, and afterwards the server still serves a
// well-behaved grpc++ ADS client.
#include <regex>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/attack_script.h"
#include "xds/ads_test_client.h"
#include "xds/type_urls.h"
#include "xds/xds_server.h"

namespace podlb::xds {
namespace {

using ::podlb::testing::AdsTestClient;
using ::testing::HasSubstr;
using ::testing::StartsWith;

class AdsHostileInputTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Endpoint e;
    e.address = "10.0.0.1";
    e.port = 50051;
    e.ready = e.serving = true;
    registry_.Publish({{"default", "greeter", "grpc"}}, {e});
    XdsServerOptions options{.listen = "127.0.0.1:0"};
    options.limits.handshake_timeout = std::chrono::milliseconds(300);
    options.limits.max_request_bytes = 1 << 20;
    server_ = std::make_unique<XdsServer>(registry_, options);
    ASSERT_TRUE(server_->Start().ok());
  }

  std::string Attack(const std::string& scenario) {
    return testing::RunAttackScript("tests/xds/ads_attacks.py", server_->port(), scenario);
  }

  void ExpectStillServing() {
    AdsTestClient client("127.0.0.1:" + std::to_string(server_->port()),
                         grpc::InsecureChannelCredentials());
    ASSERT_TRUE(client.Subscribe(TypeUrl(ResourceType::kCluster), {}));
    auto response = client.Read();
    ASSERT_TRUE(response.has_value());
    EXPECT_EQ(response->resources_size(), 1);
  }

  // The server learns of a stream's end on its own loop (a client's cancel, a connection
  // closed after its GOAWAY went out): wait for it to have counted every stream gone.
  bool AllStreamsGone() {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (server_->service().StreamCount() != 0) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
  }

  Registry registry_;
  std::unique_ptr<XdsServer> server_;
};

TEST_F(AdsHostileInputTest, RawClientGetsTheWildcardClusters) {
  // The script's own baseline: a hand-made request is answered, so the failures below are the
  // server's answers, not the script's mistakes.
  EXPECT_EQ(Attack("valid"), "first=data");
}

TEST_F(AdsHostileInputTest, CompressedRequestIsUnimplemented) {
  EXPECT_EQ(Attack("compressed"), "first=status=12");
  ExpectStillServing();
}

TEST_F(AdsHostileInputTest, OversizedRequestIsRefusedBeforeItArrives) {
  EXPECT_EQ(Attack("oversize"), "first=status=8");
  ExpectStillServing();
}

TEST_F(AdsHostileInputTest, BytesThatAreNotADiscoveryRequestEndTheCallWithInvalidArgument) {
  EXPECT_EQ(Attack("not_protobuf"), "first=status=3");
  ExpectStillServing();
}

TEST_F(AdsHostileInputTest, NonGrpcContentTypeIsUnsupportedMediaType) {
  EXPECT_EQ(Attack("content_type"), "first=http=415");
  ExpectStillServing();
}

TEST_F(AdsHostileInputTest, UnknownMethodIsUnimplemented) {
  EXPECT_EQ(Attack("unknown_method"), "first=status=12");
  ExpectStillServing();
}

TEST_F(AdsHostileInputTest, HalfClosingClientGetsItsResponseThenOk) {
  EXPECT_EQ(Attack("half_close"), "first=data end=0");
  EXPECT_TRUE(AllStreamsGone()) << server_->service().StreamCount() << " streams left";
}

TEST_F(AdsHostileInputTest, RapidResetEndsTheConnection) {
  std::string result = Attack("rapid_reset");
  // 2,000 resets in a burst, against a limit of 200 a second: GOAWAY(ENHANCE_YOUR_CALM).
  EXPECT_THAT(result, StartsWith("goaway=11")) << result;
  ExpectStillServing();
  EXPECT_TRUE(AllStreamsGone()) << server_->service().StreamCount() << " streams left";
}

TEST_F(AdsHostileInputTest, PingFloodEndsTheConnection) {
  EXPECT_THAT(Attack("ping_flood"), StartsWith("goaway=11"));
  ExpectStillServing();
}

TEST_F(AdsHostileInputTest, Http1InsteadOfThePrefaceClosesTheConnection) {
  // nghttp2 refuses the bad client magic; there is no HTTP/2 session to say GOAWAY on.
  EXPECT_EQ(Attack("http1"), "goaway=closed");
  ExpectStillServing();
}

TEST_F(AdsHostileInputTest, SilentConnectionIsClosedAfterTheHandshakeTimeout) {
  std::string result = Attack("no_preface");
  std::smatch m;
  ASSERT_TRUE(std::regex_match(result, m, std::regex("closed_after=([0-9.]+)"))) << result;
  // Closed by the server (not the script's 10 s limit), and not before the timeout.
  EXPECT_GE(std::stod(m[1].str()), 0.25);
  EXPECT_LT(std::stod(m[1].str()), 9.0);
  ExpectStillServing();
}

}  // namespace
}  // namespace podlb::xds
