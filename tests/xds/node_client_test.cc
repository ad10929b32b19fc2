// The control plane proven with a second xDS client nobody here wrote: grpc-js-xds from npm
// (installed by scripts/bootstrap.sh for tests only). Skipped when node_modules is absent.
#include <filesystem>

#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/process.h"
#include "xds/xds_test_backends.h"

namespace podlb::testing {
namespace {

class NodeXdsClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::filesystem::exists(SourceDir() + "/node_modules/@grpc/grpc-js-xds")) {
      GTEST_SKIP() << "node_modules/@grpc/grpc-js-xds missing: run scripts/bootstrap.sh";
    }
    for (int i = 0; i < 3; ++i) {
      backends_.push_back(std::make_unique<NamedBackend>("pod-" + std::to_string(i),
                                                         "127.0.0." + std::to_string(i + 2)));
    }
    file_ = dir_.path() + "/endpoints.yaml";
  }

  FileServiceSpec Service(const std::string& name, std::map<std::string, std::string> ann = {}) {
    FileServiceSpec spec{"default/" + name + ":50051", std::move(ann), {}};
    for (size_t i = 0; i < backends_.size(); ++i) {
      spec.endpoints.push_back({"127.0.0." + std::to_string(i + 2), backends_[i]->port(),
                                backends_[i]->name()});
    }
    return spec;
  }

  void StartControlPlane() {
    control_plane_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        PodlbBinary(), "control-plane", "--file", file_, "--listen", "127.0.0.1:0", "--admin",
        ""});
    ASSERT_TRUE(control_plane_->WaitForLineContaining("xds port", std::chrono::seconds(10)));
    for (const std::string& line : control_plane_->Lines()) {
      auto pos = line.find("xds port ");
      if (pos != std::string::npos) xds_port_ = std::stoi(line.substr(pos + 9));
    }
  }

  nlohmann::json RunClient(std::vector<std::string> args) {
    nlohmann::json bootstrap = {
        {"xds_servers",
         {{{"server_uri", "127.0.0.1:" + std::to_string(xds_port_)},
           {"channel_creds", {{{"type", "insecure"}}}},
           {"server_features", {"xds_v3", "ignore_resource_deletion"}}}}},
        {"node", {{"id", "node-client-test"}, {"locality", {{"zone", "z1"}}}}}};
    std::vector<std::string> argv = {"node", SourceDir() + "/tests/xds/node/xds_client.js"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string output;
    int rc = RunCommand(argv, &output, std::chrono::seconds(60),
                        {"GRPC_XDS_BOOTSTRAP_CONFIG=" + bootstrap.dump()});
    EXPECT_EQ(rc, 0) << output;
    // The last non-empty line is the JSON answer; anything before is grpc-js logging.
    std::string last;
    size_t start = 0;
    while (start < output.size()) {
      size_t end = output.find('\n', start);
      if (end == std::string::npos) end = output.size();
      std::string line = output.substr(start, end - start);
      if (!line.empty() && line[0] == '{') last = line;
      start = end + 1;
    }
    try {
      return nlohmann::json::parse(last);
    } catch (const nlohmann::json::exception&) {
      ADD_FAILURE() << "no JSON from the node client: " << output;
      return {};
    }
  }

  TempDir dir_;
  std::string file_;
  std::vector<std::unique_ptr<NamedBackend>> backends_;
  std::unique_ptr<ChildProcess> control_plane_;
  int xds_port_ = 0;
};

TEST_F(NodeXdsClientTest, SpreadsOverThreePods) {
  WriteFile(file_, EndpointsYaml({Service("greeter")}));
  StartControlPlane();
  nlohmann::json counts = RunClient({"spread", "greeter.default:50051", "300"});
  EXPECT_FALSE(counts.contains("")) << counts.dump();
  ASSERT_EQ(counts.size(), 3u) << counts.dump();
  int lo = 1 << 30, hi = 0;
  for (const auto& [pod, n] : counts.items()) {
    lo = std::min(lo, n.get<int>());
    hi = std::max(hi, n.get<int>());
  }
  EXPECT_LE(static_cast<double>(hi) / lo, 1.2) << counts.dump();
}

TEST_F(NodeXdsClientTest, RingHashSendsOneHeaderValueToOnePod) {
  WriteFile(file_, EndpointsYaml({Service("sticky", {{"podlb.io/lb-policy", "ring_hash"},
                                                     {"podlb.io/hash-header", "x-user"}})}));
  StartControlPlane();
  nlohmann::json pods = RunClient({"ring", "sticky.default.svc.cluster.local:50051", "x-user",
                                   "10", "u0,u1,u2,u3,u4,u5,u6,u7,u8,u9,u10,u11"});
  std::set<std::string> used;
  for (const auto& [value, list] : pods.items()) {
    ASSERT_EQ(list.size(), 1u) << value << ": " << list.dump();
    EXPECT_NE(list[0].get<std::string>(), "");
    used.insert(list[0].get<std::string>());
  }
  EXPECT_EQ(pods.size(), 12u);
  EXPECT_GT(used.size(), 1u) << "every key hashed to one pod: hashing is not by header";
}

}  // namespace
}  // namespace podlb::testing
