// `podlb endpoints` as a user runs it: against a running `podlb sandbox` (Kubernetes source over
// TLS with a kubeconfig), a file, and with bad input.
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "support/process.h"

namespace podlb::testing {
namespace {

using ::testing::HasSubstr;
using nlohmann::json;

constexpr auto kTimeout = std::chrono::seconds(20);

// The eligible count of a --json line, or -1 if the line is not one.
int Eligible(const std::string& line) {
  json doc = json::parse(line, nullptr, false);
  if (doc.is_discarded() || !doc.contains("eligible")) return -1;
  return doc["eligible"].get<int>();
}

TEST(EndpointsCliTest, FollowsTheSandboxThroughScaleUpAndDown) {
  TempDir dir;
  ChildProcess sandbox({PodlbBinary(), "sandbox", "--state-dir", dir.path(), "--pod-port",
                        std::to_string(PickFreePort()), "--grace-period", "0.2", "--first-pod-ip",
                        "127.3." + std::to_string(getpid() % 250 + 1) + ".2"});
  ASSERT_TRUE(sandbox.WaitForLine([](const std::string& l) { return l == "ready"; }, kTimeout));

  // The three accepted spellings of one service port, by name and by number.
  ChildProcess endpoints({PodlbBinary(), "endpoints", "--kubeconfig", dir.path() + "/kubeconfig",
                          "--json", "greeter.default.svc.cluster.local:50051"});
  ASSERT_TRUE(endpoints.WaitForLine([](const std::string& l) { return Eligible(l) == 3; }, kTimeout));

  std::string out;
  ASSERT_EQ(RunCommand({PodlbBinary(), "sandbox", "scale", "--state-dir", dir.path(),
                        "default/greeter", "5"}, &out), 0) << out;
  ASSERT_TRUE(endpoints.WaitForLine([](const std::string& l) { return Eligible(l) == 5; }, kTimeout));
  ASSERT_EQ(RunCommand({PodlbBinary(), "sandbox", "scale", "--state-dir", dir.path(),
                        "default/greeter", "2"}, &out), 0) << out;
  ASSERT_TRUE(endpoints.WaitForLine([](const std::string& l) {
    json doc = json::parse(l, nullptr, false);
    return !doc.is_discarded() && doc.value("eligible", -1) == 2 && doc["endpoints"].size() == 2;
  }, kTimeout)) << "scaled-down pods must drain and then leave the set";

  // Versions only grow.
  uint64_t last = 0;
  for (const auto& line : endpoints.Lines()) {
    json doc = json::parse(line, nullptr, false);
    if (doc.is_discarded()) continue;
    EXPECT_GT(doc["version"].get<uint64_t>(), last);
    last = doc["version"].get<uint64_t>();
  }
  EXPECT_EQ(endpoints.Terminate(), 0);

  // The table form names the service and each pod's state, by port name.
  ASSERT_EQ(RunCommand({PodlbBinary(), "endpoints", "--kubeconfig", dir.path() + "/kubeconfig",
                        "--once", "default/greeter:grpc"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("default/greeter:grpc"));
  EXPECT_THAT(out, HasSubstr("eligible"));
}

// One cluster-wide source instead of one per namespace; every command that reads endpoints
// takes the flag.
TEST(EndpointsCliTest, AllNamespacesFollowsTheSandbox) {
  for (const char* command : {"endpoints", "control-plane", "proxy"}) {
    std::string help;
    ASSERT_EQ(RunCommand({PodlbBinary(), command, "--help"}, &help), 0) << help;
    EXPECT_THAT(help, HasSubstr("--all-namespaces")) << command;
  }
  TempDir dir;
  ChildProcess sandbox({PodlbBinary(), "sandbox", "--state-dir", dir.path(), "--pod-port",
                        std::to_string(PickFreePort()), "--first-pod-ip",
                        "127.3." + std::to_string(getpid() % 250 + 1) + ".2"});
  ASSERT_TRUE(sandbox.WaitForLine([](const std::string& l) { return l == "ready"; }, kTimeout));
  ChildProcess endpoints({PodlbBinary(), "endpoints", "--kubeconfig", dir.path() + "/kubeconfig",
                          "--all-namespaces", "--json", "default/greeter:grpc"});
  ASSERT_TRUE(
      endpoints.WaitForLine([](const std::string& l) { return Eligible(l) == 3; }, kTimeout));
  EXPECT_EQ(endpoints.Terminate(), 0);
}

TEST(EndpointsCliTest, ReadsAFile) {
  TempDir dir;
  WriteFile(dir.path() + "/e.yaml", R"(services:
  - service: default/greeter:grpc
    endpoints:
      - {address: 127.0.0.2, port: 50051, pod: greeter-a}
)");
  std::string out;
  ASSERT_EQ(RunCommand({PodlbBinary(), "endpoints", "--file", dir.path() + "/e.yaml", "--once",
                        "--json", "default/greeter:grpc"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr(R"("pod":"greeter-a")"));
}

TEST(EndpointsCliTest, BadInputGetsAClearMessageAndANonZeroExit) {
  struct Case {
    std::vector<std::string> args;
    std::string expected;
  } cases[] = {
      {{"endpoints", "--file", "/nonexistent.yaml", "default/greeter:grpc"}, "/nonexistent.yaml"},
      {{"endpoints", "--file", "/x", "greeter"}, "namespace/name:port"},
      {{"endpoints", "--dns", "nohostport"}, "--dns \"nohostport\": no port"},
      {{"endpoints", "--dns", "greeter:0"}, "port 0; write NAME:PORT"},
      {{"endpoints", "--kubeconfig", "/nonexistent/kubeconfig", "default/greeter:grpc"},
       "/nonexistent/kubeconfig"},
      {{"endpoints", "--file", "/x", "--dns", "a:1", "default/greeter:grpc"}, "choose one source"},
      {{"endpoints", "--dns-interval", "0", "--dns", "a:1"}, "--dns-interval"},
      {{"endpoints", "--all-namespaces", "--namespace", "team-a", "--kubeconfig", "/x",
        "default/greeter:grpc"},
       "--all-namespaces already follows every namespace; drop --namespace"},
      {{"endpoints", "--file", "/x", "--all-namespaces", "default/greeter:grpc"},
       "--all-namespaces is for the Kubernetes source"},
  };
  for (const auto& c : cases) {
    std::vector<std::string> argv = {PodlbBinary()};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    std::string out;
    EXPECT_NE(RunCommand(argv, &out, std::chrono::seconds(10)), 0) << c.expected;
    EXPECT_THAT(out, HasSubstr(c.expected));
  }
}

TEST(EndpointsCliTest, AnUnreachableApiServerIsReportedNotFatal) {
  TempDir dir;
  int port = PickFreePort();
  WriteFile(dir.path() + "/kubeconfig", "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n"
            "    server: http://127.0.0.1:" + std::to_string(port) + "\nusers:\n- name: u\n  user:\n"
            "    token: t\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n");
  ChildProcess endpoints({PodlbBinary(), "endpoints", "--kubeconfig", dir.path() + "/kubeconfig",
                          "default/greeter:grpc"});
  // Nothing to print yet, but the process keeps retrying instead of exiting.
  EXPECT_EQ(endpoints.WaitExit(std::chrono::milliseconds(1500)), -1000);
  EXPECT_EQ(endpoints.Terminate(), 1) << "exits 1 when it never saw endpoints";
}

}  // namespace
}  // namespace podlb::testing
