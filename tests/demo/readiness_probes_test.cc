// The helpers' readiness probes ask real questions: the HTTP/2 probe passes through the ClusterIP
// forwarder only when a backend answers, and fails at once, saying why, when none can.
#include "demo/readiness_probes.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "grpc/testing/test.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "net/tcp_forwarder.h"

namespace podlb::demo {
namespace {

using ::testing::HasSubstr;

constexpr auto kTimeout = std::chrono::seconds(5);

class GrpcBackend {
 public:
  GrpcBackend() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(&service_);  // a server needs one; the probe calls no method
    server_ = builder.BuildAndStart();
  }
  ~GrpcBackend() { server_->Shutdown(); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  grpc::testing::TestService::Service service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST(ReadinessProbesTest, Http2ProbeGetsTheServersSettings) {
  GrpcBackend backend;
  EXPECT_TRUE(ExpectHttp2Server(backend.address(), kTimeout).ok());
}

TEST(ReadinessProbesTest, ForwarderIsReadyOnlyWhenItReachesABackend) {
  GrpcBackend backend;
  net::TcpForwarder forwarder("127.0.100.2", [&](const std::string&) -> std::optional<std::string> {
    return backend.address();
  });
  ASSERT_TRUE(forwarder.Start().ok());
  auto status = ExpectHttp2Server(forwarder.address(), kTimeout);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(forwarder.connections_forwarded(), 1u);
}

TEST(ReadinessProbesTest, ForwarderWithoutBackendIsNotReady) {
  net::TcpForwarder forwarder(
      "127.0.100.2", [](const std::string&) -> std::optional<std::string> { return std::nullopt; });
  ASSERT_TRUE(forwarder.Start().ok());
  auto start = std::chrono::steady_clock::now();
  auto status = ExpectHttp2Server(forwarder.address(), kTimeout);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("closed the connection without an answer"));
  EXPECT_LT(std::chrono::steady_clock::now() - start, kTimeout) << "a refusal is an answer";
}

TEST(ReadinessProbesTest, NothingListeningIsNotReady) {
  auto status = ExpectHttp2Server("127.0.100.3:1", kTimeout);
  ASSERT_FALSE(status.ok());
  EXPECT_THAT(std::string(status.message()), HasSubstr("cannot connect to 127.0.100.3:1"));
}

}  // namespace
}  // namespace podlb::demo
