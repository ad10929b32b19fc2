// TLS from the proxy to the endpoints: real grpc++ servers with TLS (and, for mTLS, requiring a
// client certificate), certificates made by openssl at test time. Trusted chains and names work;
// an untrusted chain, a wrong name and a missing client certificate fail the call with
// UNAVAILABLE and a message that says why, and the proxy keeps serving.
#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/proxy_server.h"
#include "proxy/test_backend.h"
#include "support/process.h"
#include "support/test_pki.h"

namespace podlb::proxy {
namespace {

using ::podlb::testing::ProxyStub;
using ::podlb::testing::TestBackend;
using ::podlb::testing::TestPki;
using ::testing::HasSubstr;

const ServiceKey kGreeter{"default", "greeter", "50051"};

class UpstreamTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pki_.MakeCa("pods"));
    ASSERT_TRUE(pki_.MakeCa("other"));
    ASSERT_TRUE(pki_.MakeLeaf("server", "pods",
                              {"IP:127.0.0.2", "IP:127.0.0.3", "IP:127.0.0.4",
                               "DNS:greeter.default.svc"}));
    ASSERT_TRUE(pki_.MakeLeaf("client", "pods", std::vector<std::string>{"DNS:podlb-proxy"}));
  }

  // Three TLS backends; with `require_client_cert`, only clients with a cert from the "pods" CA get in.
  void StartBackends(bool require_client_cert) {
    grpc::SslServerCredentialsOptions ssl(
        require_client_cert ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                            : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    ssl.pem_key_cert_pairs.push_back({pki_.KeyPem("server"), pki_.CertPem("server")});
    if (require_client_cert) ssl.pem_root_certs = pki_.CertPem("pods");
    std::vector<Endpoint> endpoints;
    for (int i = 0; i < 3; ++i) {
      backends_.push_back(std::make_unique<TestBackend>(
          "pod-" + std::to_string(i), "127.0.0." + std::to_string(2 + i), 0,
          grpc::SslServerCredentials(ssl)));
      endpoints.push_back(backends_.back()->AsEndpoint());
    }
    registry_.Publish({kGreeter}, endpoints);
  }

  void StartProxy(UpstreamTlsOptions tls, ProxyOptions options = {}) {
    tls.enabled = true;
    options.upstream_tls = tls;
    options.listeners.push_back({.host = "127.0.0.1", .port = 0, .service = kGreeter});
    proxy_ = std::make_unique<ProxyServer>(options, registry_);
    absl::Status status = proxy_->Start();
    ASSERT_TRUE(status.ok()) << status;
  }

  static grpc::Status Call(grpc::testing::TestService::Stub& stub, std::string* pod = nullptr,
                           int request_bytes = 0, int response_bytes = 0) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::testing::SimpleRequest request;
    request.mutable_payload()->set_body(std::string(request_bytes, 'q'));
    request.set_response_size(response_bytes);
    grpc::testing::SimpleResponse response;
    grpc::Status status = stub.UnaryCall(&context, request, &response);
    if (pod != nullptr) *pod = response.hostname();
    if (status.ok()) {
      EXPECT_EQ(response.payload().body().size(), size_t(response_bytes));
    }
    return status;
  }

  std::set<std::string> PodsOver(int calls) {
    auto stub = ProxyStub(proxy_->ports()[0]);
    std::set<std::string> pods;
    for (int i = 0; i < calls; ++i) {
      std::string pod;
      grpc::Status status = Call(*stub, &pod);
      EXPECT_TRUE(status.ok()) << status.error_code() << " " << status.error_message();
      pods.insert(pod);
    }
    return pods;
  }

  ::podlb::testing::TempDir dir_;
  TestPki pki_{dir_.path()};
  Registry registry_;
  std::vector<std::unique_ptr<TestBackend>> backends_;
  std::unique_ptr<ProxyServer> proxy_;
};

TEST_F(UpstreamTlsTest, TrustedEndpointsTakeCallsSpreadOverAllThree) {
  StartBackends(false);
  StartProxy({.ca_file = pki_.Cert("pods")});
  EXPECT_EQ(PodsOver(30), (std::set<std::string>{"pod-0", "pod-1", "pod-2"}));
}

TEST_F(UpstreamTlsTest, UntrustedCertificateFailsTheCallWithTheReason) {
  StartBackends(false);
  StartProxy({.ca_file = pki_.Cert("other")});
  auto stub = ProxyStub(proxy_->ports()[0]);
  grpc::Status status = Call(*stub);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("certificate verify failed"));
  // The proxy is still up and answers the next call the same way (no crash, no hang).
  EXPECT_EQ(Call(*stub).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(UpstreamTlsTest, ServerNameIsCheckedWhenGiven) {
  StartBackends(false);
  StartProxy({.ca_file = pki_.Cert("pods"), .server_name = "greeter.default.svc"});
  EXPECT_EQ(PodsOver(9).size(), 3u);
  proxy_.reset();
  StartProxy({.ca_file = pki_.Cert("pods"), .server_name = "billing.default.svc"});
  auto stub = ProxyStub(proxy_->ports()[0]);
  grpc::Status status = Call(*stub);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("certificate verify failed"));
}

TEST_F(UpstreamTlsTest, MutualTlsWithTheClientCertificate) {
  StartBackends(true);
  StartProxy({.ca_file = pki_.Cert("pods"),
              .cert_file = pki_.Cert("client"),
              .key_file = pki_.Key("client")});
  EXPECT_EQ(PodsOver(30).size(), 3u);
}

TEST_F(UpstreamTlsTest, MutualTlsWithoutAClientCertificateFailsCleanly) {
  StartBackends(true);
  StartProxy({.ca_file = pki_.Cert("pods")});
  auto stub = ProxyStub(proxy_->ports()[0]);
  for (int i = 0; i < 3; ++i) {
    grpc::Status status = Call(*stub);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
    EXPECT_THAT(status.error_message(), HasSubstr("podlb proxy")) << "a gRPC status from the proxy";
    EXPECT_THAT(status.error_message(), HasSubstr("TLS")) << "says the TLS session failed";
  }
}

// Messages far larger than one TLS record (16 KiB) in both directions, with TLS on both sides
// of the proxy: every record must be read even when OpenSSL already buffered it.
TEST_F(UpstreamTlsTest, LargeMessagesCrossTlsOnBothSides) {
  StartBackends(false);
  ASSERT_TRUE(pki_.MakeLeaf("proxy", "pods", std::vector<std::string>{"DNS:localhost"}));
  ProxyOptions options;
  options.tls_cert_file = pki_.Cert("proxy");
  options.tls_key_file = pki_.Key("proxy");
  StartProxy({.ca_file = pki_.Cert("pods")}, options);
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = pki_.CertPem("pods");
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto stub = grpc::testing::TestService::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(proxy_->ports()[0]), grpc::SslCredentials(ssl), args));
  for (int size : {1, 100'000, 1'000'000, 3'000'000}) {
    grpc::Status status = Call(*stub, nullptr, size, size);
    EXPECT_TRUE(status.ok()) << size << ": " << status.error_message();
  }
}

TEST(UpstreamTlsFlagsTest, BadCombinationsExitWithTheRemedy) {
  std::string output;
  EXPECT_EQ(::podlb::testing::RunCommand(
                {::podlb::testing::PodlbBinary(), "proxy", "--file", "/dev/null", "--listen",
                 "127.0.0.1:0=default/greeter:1", "--admin", "", "--upstream-cert", "/x.pem"},
                &output),
            2);
  EXPECT_THAT(output, HasSubstr("--upstream-cert and --upstream-key go together"));
  EXPECT_EQ(::podlb::testing::RunCommand(
                {::podlb::testing::PodlbBinary(), "proxy", "--file", "/dev/null", "--listen",
                 "127.0.0.1:0=default/greeter:1", "--admin", "", "--upstream-ca",
                 "/nonexistent/ca.pem"},
                &output),
            2);
  EXPECT_THAT(output, HasSubstr("cannot load --upstream-ca /nonexistent/ca.pem"));
}

}  // namespace
}  // namespace podlb::proxy
