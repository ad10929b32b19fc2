// Proxy options beyond the default path: ring hash on a header, zone preference, round robin,
// outlier ejection of an unreachable endpoint, and TLS downstream with ALPN h2.
#include <map>
#include <set>

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

class PickingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i)
      backends_.push_back(std::make_unique<TestBackend>("pod-" + std::to_string(i),
                                                        "127.0.0." + std::to_string(2 + i)));
  }
  void Start(ProxyOptions options, std::vector<Endpoint> endpoints = {}) {
    if (endpoints.empty())
      for (auto& b : backends_) endpoints.push_back(b->AsEndpoint());
    registry_.Publish({kGreeter}, endpoints);
    options.listeners.push_back({.host = "127.0.0.1", .port = 0, .service = kGreeter});
    proxy_ = std::make_unique<ProxyServer>(options, registry_);
    ASSERT_TRUE(proxy_->Start().ok());
  }
  std::string Call(grpc::testing::TestService::Stub& stub,
                   const std::map<std::string, std::string>& metadata = {}) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    for (const auto& [k, v] : metadata) context.AddMetadata(k, v);
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    grpc::Status status = stub.UnaryCall(&context, request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response.hostname();
  }

  Registry registry_;
  std::vector<std::unique_ptr<TestBackend>> backends_;
  std::unique_ptr<ProxyServer> proxy_;
};

TEST_F(PickingTest, RingHashKeepsAKeyOnOneEndpointAndSpreadsKeys) {
  ProxyOptions options;
  options.balancing.lb_policy = balancing::PolicyKind::kRingHash;
  options.balancing.hash_header = "x-user";
  Start(options);
  auto stub = ProxyStub(proxy_->ports()[0]);
  std::set<std::string> owners;
  for (int user = 0; user < 30; ++user) {
    std::string first = Call(*stub, {{"x-user", "user-" + std::to_string(user)}});
    for (int i = 0; i < 5; ++i)
      EXPECT_EQ(Call(*stub, {{"x-user", "user-" + std::to_string(user)}}), first);
    owners.insert(first);
  }
  EXPECT_EQ(owners.size(), 3u);
}

TEST_F(PickingTest, ZonePreferenceKeepsCallsInTheNodesZone) {
  ProxyOptions options;
  options.zone = "zone-b";
  options.balancing.zone_aware = true;
  Start(options, {backends_[0]->AsEndpoint("zone-a"), backends_[1]->AsEndpoint("zone-b"),
                  backends_[2]->AsEndpoint("zone-a")});
  auto stub = ProxyStub(proxy_->ports()[0]);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(Call(*stub), "pod-1");
}

TEST_F(PickingTest, RoundRobinCycles) {
  ProxyOptions options;
  options.balancing.lb_policy = balancing::PolicyKind::kRoundRobin;
  Start(options);
  auto stub = ProxyStub(proxy_->ports()[0]);
  std::map<std::string, int> counts;
  for (int i = 0; i < 30; ++i) ++counts[Call(*stub)];
  for (auto& b : backends_) EXPECT_EQ(counts[b->name()], 10);
}

TEST_F(PickingTest, UnreachableEndpointIsRetriedAroundAndEjected) {
  Endpoint dead = backends_[2]->AsEndpoint();
  backends_[2]->Kill();  // its port now refuses connections
  // Round robin keeps offering the dead endpoint, so ejection is what takes it out. (peak_ewma
  // sheds it on its first failure; the next test.)
  ProxyOptions options;
  options.balancing.lb_policy = balancing::PolicyKind::kRoundRobin;
  Start(options, {backends_[0]->AsEndpoint(), backends_[1]->AsEndpoint(), dead});
  auto stub = ProxyStub(proxy_->ports()[0]);
  for (int i = 0; i < 60; ++i) EXPECT_NE(Call(*stub), "");  // every call succeeds
  std::string metrics = proxy_->RenderMetrics();
  EXPECT_THAT(metrics, ::testing::ContainsRegex(
                           "podlb_proxy_endpoint_ejections_total\\{service="
                           "\"default/greeter:50051\",endpoint=\"127.0.0.4:[0-9]+\",pod="
                           "\"[^\"]*\"\\} [1-9]"));
  EXPECT_THAT(metrics, ::testing::ContainsRegex(
                           "podlb_proxy_endpoint_ejected\\{service="
                           "\"default/greeter:50051\",endpoint=\"127.0.0.4:[0-9]+\",pod="
                           "\"[^\"]*\"\\} 1"));
}

TEST_F(PickingTest, PeakEwmaShedsAnUnreachableEndpointOnItsFirstFailure) {
  Endpoint dead = backends_[2]->AsEndpoint();
  backends_[2]->Kill();
  Start(ProxyOptions{}, {backends_[0]->AsEndpoint(), backends_[1]->AsEndpoint(), dead});
  auto stub = ProxyStub(proxy_->ports()[0]);
  for (int i = 0; i < 60; ++i) EXPECT_NE(Call(*stub), "");  // every call succeeds
  // The failed connection counts as a failure with the penalty latency: no second attempt.
  EXPECT_THAT(proxy_->RenderMetrics(),
              ::testing::ContainsRegex("podlb_proxy_endpoint_failures_total\\{service="
                                       "\"default/greeter:50051\",endpoint=\"127.0.0.4:[0-9]+"
                                       "\",pod=\"[^\"]*\"\\} 1\n"));
}

TEST_F(PickingTest, ActiveHealthChecksSteerAroundANotServingEndpoint) {
  ProxyOptions options;
  options.health_check_interval = std::chrono::milliseconds(100);
  Start(options);
  auto stub = ProxyStub(proxy_->ports()[0]);
  Call(*stub);
  backends_[1]->SetServing(false);
  // Once a probe saw NOT_SERVING, 30 calls in a row avoid pod-1.
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (int i = 0; i < 30; ++i)
          if (Call(*stub) == "pod-1") return false;
        return true;
      },
      std::chrono::seconds(5), "pod-1 to be taken out by the health checks"));
  backends_[1]->SetServing(true);
  EXPECT_TRUE(testing::WaitFor([&] { return Call(*stub) == "pod-1"; }, std::chrono::seconds(5),
                               "pod-1 to come back once SERVING"));
}

TEST_F(PickingTest, ServesTlsWithAlpnH2) {
  testing::TempDir dir;
  std::string cert = dir.path() + "/cert.pem", key = dir.path() + "/key.pem";
  std::string output;
  ASSERT_EQ(testing::RunCommand(
                {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost",
                 "-days", "1", "-keyout", key, "-out", cert},
                &output),
            0)
      << output;
  ProxyOptions options;
  options.tls_cert_file = cert;
  options.tls_key_file = key;
  Start(options);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = testing::ReadFile(cert);
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto stub = grpc::testing::TestService::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(proxy_->ports()[0]), grpc::SslCredentials(ssl), args));
  std::set<std::string> seen;
  for (int i = 0; i < 30; ++i) seen.insert(Call(*stub));
  EXPECT_EQ(seen.size(), 3u);
}

}  // namespace
}  // namespace podlb::proxy
