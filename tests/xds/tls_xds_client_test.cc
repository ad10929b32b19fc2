// Real xDS clients reaching `podlb control-plane --tls-cert/--tls-key` over TLS, and the calls
// they then make. Neither client tested here has the bootstrap channel_creds type "tls" (gRFC
// A65, what `podlb bootstrap --tls` prints): Debian's grpc++ 1.51 knows google_default, insecure
// and fake; grpc-js-xds 1.14.1 google_default and insecure. "google_default" is TLS with the
// default roots (GRPC_DEFAULT_SSL_ROOTS_FILE_PATH, honoured by both) plus Google call
// credentials; given a throwaway service-account key those are a self-signed JWT made locally,
// which podlb ignores. So both clients can do server-authenticated TLS to podlb, not mTLS.
//
// gRPC C-core's google_default also probes for the GCE metadata server (a DNS lookup of
// metadata.google.internal), which must not leave the machine: that test re-runs itself inside
// a private network namespace (`unshare -rn`, loopback only) and is skipped where none can be
// made. grpc-js-xds with GOOGLE_CLOUD_PROJECT set and metadata detection off stays on loopback.
#include <filesystem>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/process.h"
#include "support/test_pki.h"
#include "xds/bootstrap.h"
#include "xds/control_plane_process.h"
#include "xds/xds_test_backends.h"

namespace podlb::testing {
namespace {

constexpr char kInPrivateNetwork[] = "PODLB_TEST_IN_PRIVATE_NETWORK";

// The last line of `output` that is a JSON object (the node client's answer), or null.
nlohmann::json LastJsonLine(const std::string& output) {
  nlohmann::json last;
  size_t start = 0;
  while (start < output.size()) {
    size_t end = output.find('\n', start);
    if (end == std::string::npos) end = output.size();
    if (output[start] == '{') {
      last = nlohmann::json::parse(output.substr(start, end - start), nullptr, false);
    }
    start = end + 1;
  }
  return last;
}

class XdsTlsClientTest : public ::testing::Test {
 protected:
  // A CA, a TLS-only control plane with a certificate it signed, three pods for the greeter.
  void StartTlsControlPlane() {
    TestPki pki(dir_.path());
    ASSERT_TRUE(pki.MakeCa("ca"));
    ASSERT_TRUE(pki.MakeLeaf("server", "ca", true));
    ca_file_ = pki.Cert("ca");
    file_ = dir_.path() + "/endpoints.yaml";
    FileServiceSpec spec{"default/greeter:50051", {}, {}};
    for (int i = 0; i < 3; ++i) {
      backends_.push_back(std::make_unique<NamedBackend>("pod-" + std::to_string(i),
                                                         "127.0.0." + std::to_string(i + 2)));
      spec.endpoints.push_back(
          {"127.0.0." + std::to_string(i + 2), backends_[i]->port(), backends_[i]->name()});
    }
    WriteFile(file_, EndpointsYaml({spec}));
    control_plane_ = std::make_unique<ControlPlaneProcess>(
        std::vector<std::string>{"--file", file_, "--listen", "127.0.0.1:0", "--tls-cert",
                                 pki.Cert("server"), "--tls-key", pki.Key("server")});
    ASSERT_TRUE(control_plane_->WaitReady());
  }

  // A service-account key file nobody issued: the Google call credentials sign with it locally.
  std::string ThrowawayServiceAccount() {
    std::string key = dir_.path() + "/sa.key";
    std::string output;
    EXPECT_EQ(RunCommand({"openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt",
                          "rsa_keygen_bits:2048", "-out", key},
                         &output),
              0)
        << output;
    nlohmann::json account = {{"type", "service_account"},
                              {"project_id", "podlb-test"},
                              {"private_key_id", "0123456789abcdef"},
                              {"private_key", ReadFile(key)},
                              {"client_email", "xds@podlb-test.iam.gserviceaccount.com"},
                              {"client_id", "1"},
                              // Never used for a self-signed JWT; loopback if it ever were.
                              {"token_uri", "https://127.0.0.1:9/token"}};
    std::string path = dir_.path() + "/service-account.json";
    WriteFile(path, account.dump());
    return path;
  }

  // `creds_type` "podlb": what `podlb bootstrap --tls` prints.
  nlohmann::json Bootstrap(const std::string& creds_type) const {
    if (creds_type == "podlb") {
      return nlohmann::json::parse(xds::BuildBootstrapJson(
          {.server = "127.0.0.1:" + std::to_string(control_plane_->xds_port()),
           .node_id = "tls-client-test",
           .zone = "z1",
           .tls = true}));
    }
    return {{"xds_servers",
             {{{"server_uri", "127.0.0.1:" + std::to_string(control_plane_->xds_port())},
               {"channel_creds", {{{"type", creds_type}}}},
               {"server_features", {"xds_v3", "ignore_resource_deletion"}}}}},
            {"node", {{"id", "tls-client-test"}, {"locality", {{"zone", "z1"}}}}}};
  }

  static bool InPrivateNetwork() { return std::getenv(kInPrivateNetwork) != nullptr; }

  // Whether this machine lets an unprivileged test make a network namespace; `why` if not.
  static bool CanMakePrivateNetwork(std::string* why) {
    return RunCommand({"unshare", "-rn", "ip", "link", "set", "lo", "up"}, why) == 0;
  }

  // Runs this very test again in a new network namespace with only loopback, and checks that
  // it passed there.
  static void RerunInPrivateNetwork() {
    const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string self = std::filesystem::read_symlink("/proc/self/exe");
    std::string output;
    int rc =
        RunCommand({"unshare", "-rn", "sh", "-c", "ip link set lo up && exec \"$0\" \"$@\"", self,
                    "--gtest_filter=" + std::string(test->test_suite_name()) + "." + test->name()},
                   &output, std::chrono::seconds(60), {std::string(kInPrivateNetwork) + "=1"});
    EXPECT_EQ(rc, 0) << output;
    EXPECT_NE(output.find("[  PASSED  ] 1 test."), std::string::npos) << output;
  }

  TempDir dir_;
  std::string ca_file_;
  std::string file_;
  std::vector<std::unique_ptr<NamedBackend>> backends_;
  std::unique_ptr<ControlPlaneProcess> control_plane_;
};

TEST_F(XdsTlsClientTest, GrpcCppCallsThroughATlsXdsConnection) {
  if (!InPrivateNetwork()) {
    std::string why;
    if (!CanMakePrivateNetwork(&why)) {
      GTEST_SKIP() << "no network namespace for grpc++'s google_default metadata-server probe: "
                   << why;
    }
    RerunInPrivateNetwork();
    return;
  }
  StartTlsControlPlane();

  // Read once per process by gRPC: set before the first channel.
  setenv("GRPC_XDS_BOOTSTRAP_CONFIG", Bootstrap("podlb").dump().c_str(), 1);
  setenv("GRPC_DEFAULT_SSL_ROOTS_FILE_PATH", ca_file_.c_str(), 1);
  setenv("GOOGLE_APPLICATION_CREDENTIALS", ThrowawayServiceAccount().c_str(), 1);
  auto stub = grpc::testing::TestService::NewStub(
      grpc::CreateChannel("xds:///greeter.default:50051", grpc::InsecureChannelCredentials()));
  // Every call succeeds; round robin reaches each pod once its connection is up.
  std::map<std::string, int> counts;
  ASSERT_TRUE(WaitFor(
      [&] {
        grpc::ClientContext context;
        context.set_wait_for_ready(true);
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
        grpc::testing::SimpleRequest request;
        grpc::testing::SimpleResponse response;
        grpc::Status status = stub->UnaryCall(&context, request, &response);
        EXPECT_TRUE(status.ok()) << status.error_message();
        counts[status.ok() ? response.hostname() : ""]++;
        return counts.size() == 3 && counts.count("") == 0;
      },
      std::chrono::seconds(10), "answers from the three pods"));
  EXPECT_EQ(control_plane_->ConnectedClients(), 1);
}

TEST_F(XdsTlsClientTest, GrpcJsXdsCallsThroughATlsXdsConnection) {
  if (!std::filesystem::exists(SourceDir() + "/node_modules/@grpc/grpc-js-xds")) {
    GTEST_SKIP() << "node_modules/@grpc/grpc-js-xds missing: run scripts/bootstrap.sh";
  }
  StartTlsControlPlane();
  std::vector<std::string> env = {
      "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=" + ca_file_,
      "GOOGLE_APPLICATION_CREDENTIALS=" + ThrowawayServiceAccount(),
      // Keep google-auth-library off the network: the project from here, no metadata server.
      "GOOGLE_CLOUD_PROJECT=podlb-test", "METADATA_SERVER_DETECTION=none",
      "GCE_METADATA_HOST=127.0.0.1:9"};
  // The answers of `calls` calls ("" for failures) with channel_creds `creds_type`.
  auto spread = [&](const std::string& creds_type, int calls) {
    std::vector<std::string> with_bootstrap = env;
    with_bootstrap.push_back("GRPC_XDS_BOOTSTRAP_CONFIG=" + Bootstrap(creds_type).dump());
    std::string output;
    int rc = RunCommand({"node", SourceDir() + "/tests/xds/node/xds_client.js", "spread",
                         "greeter.default:50051", std::to_string(calls)},
                        &output, std::chrono::seconds(60), with_bootstrap);
    EXPECT_EQ(rc, 0) << output;
    nlohmann::json counts = LastJsonLine(output);
    EXPECT_TRUE(counts.is_object()) << output;
    return counts;
  };
  // Only the endpoints from the TLS xDS connection lead to the pods; a call cannot succeed
  // otherwise. (Not all three need answer: round robin skips a pod still connecting.)
  nlohmann::json counts = spread("google_default", 30);
  EXPECT_FALSE(counts.contains("")) << counts.dump();
  int answered = 0;
  for (const auto& [pod, n] : counts.items()) {
    EXPECT_TRUE(absl::StartsWith(pod, "pod-")) << pod;
    answered += n.get<int>();
  }
  EXPECT_EQ(answered, 30) << counts.dump();

  // "tls" alone (gRFC A65) is not a type this version knows: it rejects the bootstrap (the call
  // fails at name resolution). What `podlb bootstrap --tls` prints lists google_default after
  // it, which this version takes.
  EXPECT_EQ(spread("tls", 1), nlohmann::json({{"", 1}}));
  nlohmann::json with_podlb_bootstrap = spread("podlb", 10);
  EXPECT_FALSE(with_podlb_bootstrap.contains("")) << with_podlb_bootstrap.dump();
}

}  // namespace
}  // namespace podlb::testing
