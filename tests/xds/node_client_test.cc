// The control plane proven with a second xDS client nobody here wrote: grpc-js-xds from npm
// (installed by scripts/bootstrap.sh for tests only). Skipped when node_modules is absent.
// One-shot runs use xds_client.js; tests that change things while the client runs use
// xds_loop.js, which calls without waitForReady so a gap in service shows as a "fail" line.
#include <signal.h>

#include <filesystem>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/process.h"
#include "xds/control_plane_process.h"
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

  // On `port` (0: any); the bootstrap follows the port of the latest start.
  void StartControlPlane(int port = 0) {
    control_plane_ = std::make_unique<ControlPlaneProcess>(
        std::vector<std::string>{"--file", file_, "--listen", "127.0.0.1:" + std::to_string(port)});
    ASSERT_TRUE(control_plane_->WaitReady());
    xds_port_ = control_plane_->xds_port();
  }

  // `capabilities`: the podlb.io/capabilities node metadata, when not empty.
  nlohmann::json Bootstrap(const std::string& capabilities = "") {
    nlohmann::json node = {{"id", "node-client-test"}, {"locality", {{"zone", "z1"}}}};
    if (!capabilities.empty()) node["metadata"] = {{"podlb.io/capabilities", capabilities}};
    return {{"xds_servers",
             {{{"server_uri", "127.0.0.1:" + std::to_string(xds_port_)},
               {"channel_creds", {{{"type", "insecure"}}}},
               {"server_features", {"xds_v3", "ignore_resource_deletion"}}}}},
            {"node", node}};
  }

  // xds_loop.js on `target` (and `probe`), once it has had answers from the three pods.
  std::unique_ptr<ChildProcess> StartLoop(const std::string& target, const std::string& probe,
                                          const nlohmann::json& bootstrap) {
    std::vector<std::string> argv = {"node", SourceDir() + "/tests/xds/node/xds_loop.js", target};
    if (!probe.empty()) argv.push_back(probe);
    auto loop = std::make_unique<ChildProcess>(
        argv, std::vector<std::string>{"GRPC_XDS_BOOTSTRAP_CONFIG=" + bootstrap.dump()});
    for (const char* pod : {"pod-0", "pod-1", "pod-2"}) {
      EXPECT_TRUE(
          loop->WaitForLineContaining(std::string("first ") + pod, std::chrono::seconds(20)));
    }
    return loop;
  }

  // The answers of the loop's next 200 calls, counted from now (failures are "fail" lines).
  static std::map<std::string, int> Window(ChildProcess& loop) {
    auto windows = [&loop] {
      std::vector<std::string> found;
      for (const std::string& line : loop.Lines()) {
        if (absl::StartsWith(line, "window ")) found.push_back(line.substr(7));
      }
      return found;
    };
    size_t before = windows().size();
    kill(loop.pid(), SIGUSR2);
    std::map<std::string, int> counts;
    if (!WaitFor([&] { return windows().size() > before; }, std::chrono::seconds(20),
                 "200 calls counted by the node client")) {
      ADD_FAILURE() << "no window line";
      return counts;
    }
    nlohmann::json window = nlohmann::json::parse(windows()[before]);
    for (const auto& [pod, n] : window.items()) counts[pod] = n.get<int>();
    return counts;
  }

  static std::vector<std::string> FailLines(const ChildProcess& loop) {
    std::vector<std::string> fails;
    for (const std::string& line : loop.Lines()) {
      if (absl::StartsWith(line, "fail")) fails.push_back(line);
    }
    return fails;
  }

  // A fourth pod, pod-3, added to the endpoints file under `service`.
  void AddFourthPod(const std::vector<FileServiceSpec>& others, const std::string& service) {
    backends_.push_back(std::make_unique<NamedBackend>("pod-3", "127.0.0.5"));
    std::vector<FileServiceSpec> all = others;
    all.push_back(Service(service));
    WriteFile(file_, EndpointsYaml(all));
  }

  nlohmann::json RunClient(std::vector<std::string> args) {
    nlohmann::json bootstrap = Bootstrap();
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
  std::unique_ptr<ControlPlaneProcess> control_plane_;
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

// grpc_client_test's NACK test for grpc-js-xds: it rejects LEAST_REQUEST (the node claims the
// capability falsely on purpose), and its good Service keeps working and taking updates.
TEST_F(NodeXdsClientTest, NackedClusterDoesNotBreakTheClient) {
  const FileServiceSpec bad = Service("bad-b", {{"podlb.io/lb-policy", "least_request"}});
  WriteFile(file_, EndpointsYaml({Service("greeter-b"), bad}));
  StartControlPlane();
  auto loop =
      StartLoop("greeter-b.default:50051", "bad-b.default:50051", Bootstrap("least_request"));
  ASSERT_TRUE(loop->WaitForLineContaining("probe", std::chrono::seconds(10)));
  ASSERT_TRUE(WaitFor([&] { return control_plane_->Metric("podlb_xds_nacks_total") >= 1; },
                      std::chrono::seconds(10), "a NACK counted by the control plane"));
  // The rejected Service's call failed: no pod answered it.
  for (const std::string& line : loop->Lines()) {
    if (absl::StartsWith(line, "probe")) {
      EXPECT_EQ(line.find("pod-"), std::string::npos) << line;
    }
  }

  std::map<std::string, int> counts = Window(*loop);
  EXPECT_EQ(counts.size(), 3u);
  AddFourthPod({bad}, "greeter-b");
  EXPECT_TRUE(loop->WaitForLineContaining("first pod-3", std::chrono::seconds(10)));
  EXPECT_EQ(FailLines(*loop), std::vector<std::string>{});
}

// grpc_client_test's restart test for grpc-js-xds: SIGKILL the control plane, calls go on with
// the last resources; a control plane started again on the same port is found and its news
// taken.
TEST_F(NodeXdsClientTest, CallsKeepSucceedingWhileTheControlPlaneRestarts) {
  WriteFile(file_, EndpointsYaml({Service("greeter-c")}));
  int port = PickFreePort();
  StartControlPlane(port);
  auto loop = StartLoop("greeter-c.default:50051", "", Bootstrap());

  control_plane_->Kill();
  std::map<std::string, int> while_down = Window(*loop);
  EXPECT_EQ(while_down.size(), 3u);

  StartControlPlane(port);
  ASSERT_TRUE(WaitFor([&] { return control_plane_->ConnectedClients() == 1; },
                      std::chrono::seconds(10),
                      "the client reconnecting to the restarted control plane"));
  AddFourthPod({}, "greeter-c");
  EXPECT_TRUE(loop->WaitForLineContaining("first pod-3", std::chrono::seconds(10)));
  EXPECT_EQ(FailLines(*loop), std::vector<std::string>{});
}

}  // namespace
}  // namespace podlb::testing
