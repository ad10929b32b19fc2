// TLS on the xDS port: `podlb control-plane --tls-cert/--tls-key[/--tls-client-ca]` serves TLS
// clients and refuses plaintext ones, mTLS refuses clients without a certificate its CA signed,
// and a rotated certificate (files replaced the way a Kubernetes Secret volume is updated: a
// symlink swap) reaches new connections without breaking open streams. Certificates are made at
// test time with openssl; the clients are raw ADS streams on the generated stub.
#include <filesystem>

#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "gtest/gtest.h"
#include "support/process.h"
#include "xds/ads_test_client.h"
#include "xds/control_plane_process.h"
#include "support/test_pki.h"
#include "xds/type_urls.h"
#include "xds/xds_server.h"
#include "xds/xds_test_backends.h"

namespace podlb::testing {
namespace {

using xds::kClusterLoadAssignmentType;
using xds::kListenerType;

const char kListenerName[] = "greeter.default:50051";
const char kClusterName[] = "default/greeter:50051";

class XdsTlsTest : public ::testing::Test {
 protected:
  // One PKI for the suite: ca1 signs server1 and client1; ca2 signs server2 and client2.
  static void SetUpTestSuite() {
    pki_dir_ = new TempDir();
    pki_ = new TestPki(pki_dir_->path());
    for (const char* ca : {"ca1", "ca2"}) ASSERT_TRUE(pki_->MakeCa(ca));
    for (const char* n : {"1", "2"}) {
      ASSERT_TRUE(pki_->MakeLeaf(std::string("server") + n, std::string("ca") + n, true));
      ASSERT_TRUE(pki_->MakeLeaf(std::string("client") + n, std::string("ca") + n, false));
    }
  }
  static void TearDownTestSuite() {
    delete pki_;
    delete pki_dir_;
  }

  void SetUp() override {
    file_ = dir_.path() + "/endpoints.yaml";
    WriteFile(file_, EndpointsYaml({{kClusterName, {}, {{"127.0.0.2", 50051, "pod-0"}}}}));
  }

  // A client trusting only `ca`, presenting `client` (a name in the PKI) when not empty.
  static std::shared_ptr<grpc::ChannelCredentials> Tls(const std::string& ca,
                                                       const std::string& client = "") {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = pki_->CertPem(ca);
    if (!client.empty()) {
      options.pem_cert_chain = pki_->CertPem(client);
      options.pem_private_key = pki_->KeyPem(client);
    }
    return grpc::SslCredentials(options);
  }

  // Asks `port` for the greeter Listener over a new connection: OK when it came, else the
  // status the stream ended with.
  static grpc::Status FetchListener(int port, std::shared_ptr<grpc::ChannelCredentials> creds) {
    AdsTestClient client("127.0.0.1:" + std::to_string(port), std::move(creds), "tls-test",
                         std::chrono::seconds(5));
    client.Subscribe(kListenerType, {kListenerName});
    auto response = client.Read();
    if (!response) {
      grpc::Status status = client.Finish();
      return status.ok() ? grpc::Status(grpc::StatusCode::INTERNAL, "stream ended, no response")
                         : status;
    }
    envoy::config::listener::v3::Listener listener;
    if (response->resources_size() != 1 || !response->resources(0).UnpackTo(&listener) ||
        listener.name() != kListenerName) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "unexpected " + response->DebugString());
    }
    return grpc::Status::OK;
  }

  std::unique_ptr<ControlPlaneProcess> StartControlPlane(std::vector<std::string> tls_flags) {
    std::vector<std::string> args = {"--file", file_, "--listen", "127.0.0.1:0"};
    args.insert(args.end(), tls_flags.begin(), tls_flags.end());
    auto control_plane = std::make_unique<ControlPlaneProcess>(args);
    EXPECT_TRUE(control_plane->WaitReady());
    return control_plane;
  }

  static TempDir* pki_dir_;
  static TestPki* pki_;
  TempDir dir_;
  std::string file_;
};

TempDir* XdsTlsTest::pki_dir_ = nullptr;
TestPki* XdsTlsTest::pki_ = nullptr;

TEST_F(XdsTlsTest, TlsPortServesTlsClientsAndRefusesPlaintext) {
  auto control_plane =
      StartControlPlane({"--tls-cert", pki_->Cert("server1"), "--tls-key", pki_->Key("server1")});
  int port = control_plane->xds_port();

  grpc::Status tls = FetchListener(port, Tls("ca1"));
  EXPECT_TRUE(tls.ok()) << tls.error_message();
  grpc::Status plaintext = FetchListener(port, grpc::InsecureChannelCredentials());
  EXPECT_EQ(plaintext.error_code(), grpc::StatusCode::UNAVAILABLE) << plaintext.error_message();
  // The client verifies the server: one trusting another CA does not get resources.
  grpc::Status other_ca = FetchListener(port, Tls("ca2"));
  EXPECT_EQ(other_ca.error_code(), grpc::StatusCode::UNAVAILABLE) << other_ca.error_message();
  // The port is still healthy after the refused handshakes.
  EXPECT_TRUE(FetchListener(port, Tls("ca1")).ok());
}

TEST_F(XdsTlsTest, MtlsRefusesClientsWithoutACertificateFromTheClientCa) {
  auto control_plane =
      StartControlPlane({"--tls-cert", pki_->Cert("server1"), "--tls-key", pki_->Key("server1"),
                         "--tls-client-ca", pki_->Cert("ca1")});
  int port = control_plane->xds_port();

  grpc::Status no_cert = FetchListener(port, Tls("ca1"));
  EXPECT_EQ(no_cert.error_code(), grpc::StatusCode::UNAVAILABLE) << no_cert.error_message();
  grpc::Status foreign_cert = FetchListener(port, Tls("ca1", "client2"));
  EXPECT_EQ(foreign_cert.error_code(), grpc::StatusCode::UNAVAILABLE)
      << foreign_cert.error_message();
  grpc::Status signed_cert = FetchListener(port, Tls("ca1", "client1"));
  EXPECT_TRUE(signed_cert.ok()) << signed_cert.error_message();
}

// In process, because the reload interval is not a flag (the command line keeps gRPC's file
// watcher at 60 s); here it is 1 s. The server certificate and the client CA rotate together,
// from ca1 to ca2, through one symlink swap, as kubelet updates a mounted Secret.
TEST_F(XdsTlsTest, RotatedCertificatesReachNewConnectionsAndOpenStreamsSurvive) {
  namespace fs = std::filesystem;
  auto install = [&](const std::string& version, const std::string& n) {
    std::string dir = dir_.path() + "/" + version;
    fs::create_directory(dir);
    fs::copy_file(pki_->Cert("server" + n), dir + "/tls.crt");
    fs::copy_file(pki_->Key("server" + n), dir + "/tls.key");
    fs::copy_file(pki_->Cert("ca" + n), dir + "/ca.crt");
    // rename() of a new link over the old one: readers see the old or the new set, never a mix.
    fs::create_directory_symlink(version, dir_.path() + "/data.tmp");
    fs::rename(dir_.path() + "/data.tmp", dir_.path() + "/data");
  };
  install("v1", "1");
  Registry registry;
  const std::vector<ServiceKey> key = {{"default", "greeter", "grpc"},
                                       {"default", "greeter", "50051"}};
  auto endpoint = [](const std::string& address) {
    Endpoint e;
    e.address = address;
    e.port = 50051;
    e.ready = e.serving = true;
    return e;
  };
  registry.Publish(key, {endpoint("10.0.0.1")});
  std::string data = dir_.path() + "/data";
  xds::XdsServer server(registry, {.listen = "127.0.0.1:0",
                                   .tls = {.cert_file = data + "/tls.crt",
                                           .key_file = data + "/tls.key",
                                           .client_ca_file = data + "/ca.crt",
                                           .reload_interval_seconds = 1},
                                   .ads = {}});
  ASSERT_TRUE(server.Start().ok());
  int port = server.port();

  // Declared after the server: destroyed (cancelled) first, so the server's Stop does not wait.
  AdsTestClient open_stream("127.0.0.1:" + std::to_string(port), Tls("ca1", "client1"));
  ASSERT_TRUE(open_stream.Subscribe(kClusterLoadAssignmentType, {kClusterName}));
  auto first = open_stream.Read();
  ASSERT_TRUE(first.has_value());
  ASSERT_TRUE(open_stream.Ack(*first, {kClusterName}));
  EXPECT_FALSE(FetchListener(port, Tls("ca2", "client2")).ok()) << "ca2 accepted before rotation";

  install("v2", "2");
  grpc::Status rotated;
  ASSERT_TRUE(WaitFor([&] { return (rotated = FetchListener(port, Tls("ca2", "client2"))).ok(); },
                      std::chrono::seconds(10),
                      "a new connection trusting only ca2, with a ca2 client certificate"))
      << rotated.error_message();
  // The old server certificate and the old client CA are gone for new connections.
  EXPECT_FALSE(FetchListener(port, Tls("ca1", "client1")).ok());
  EXPECT_FALSE(FetchListener(port, Tls("ca2", "client1")).ok());

  // The stream opened before the rotation still takes pushes.
  registry.Publish(key, {endpoint("10.0.0.1"), endpoint("10.0.0.2")});
  auto pushed = open_stream.Read();
  ASSERT_TRUE(pushed.has_value()) << open_stream.Finish().error_message();
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  ASSERT_EQ(pushed->resources_size(), 1);
  ASSERT_TRUE(pushed->resources(0).UnpackTo(&cla));
  EXPECT_EQ(cla.endpoints(0).lb_endpoints_size(), 2);
  EXPECT_TRUE(open_stream.Ack(*pushed, {kClusterName}));
}

}  // namespace
}  // namespace podlb::testing
