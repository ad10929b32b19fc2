// `podlb test-server --faults-from-pod` against `podlb sandbox`: the test-server runs as a process
// of its own with the token of ServiceAccount default/podlb-test-server, bound only to the Role of
// deploy/examples/test-server-faults.yaml (get/list/watch on pods), and follows the
// podlb.io/fault-* annotations that real kubectl writes on the Pod named by its POD_NAME: a delay
// slows its calls, an error rate of 1 fails them UNAVAILABLE, a refused bad value leaves the
// fault as it was, removing the annotations heals it. Without the RoleBinding it says which verb
// on what is missing and keeps serving; once granted it follows; with the API server gone it
// keeps serving with the fault it had. And as the sandbox's process pod of the podlb-demo image,
// with the in-cluster credentials of its ServiceAccount, as it runs on a cluster.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpc/testing/test.grpc.pb.h"
#include "gtest/gtest.h"
#include "support/process.h"
#include "support/sandbox_cluster.h"

namespace podlb::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr auto kTimeout = SandboxCluster::kTimeout;
constexpr char kRbac[] = "/deploy/examples/test-server-faults.yaml";

struct CallResult {
  grpc::StatusCode code;
  std::string hostname;
  Clock::duration took;
};

class TestServerFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    cluster_ = std::make_unique<SandboxCluster>(14, 1);
    ASSERT_TRUE(cluster_->started());
    std::set<std::string> pods = cluster_->WaitReadyPods(1);
    ASSERT_EQ(pods.size(), 1u);
    pod_ = *pods.begin();
    std::string output;
    ASSERT_EQ(Kubectl({"apply", "-f", SourceDir() + kRbac}, &output), 0) << output;
  }

  int Kubectl(std::vector<std::string> args, std::string* output) {
    std::vector<std::string> argv = {"kubectl", "--kubeconfig", cluster_->kubeconfig(),
                                     "--cache-dir", cluster_->dir() + "/kubectl-cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return RunCommand(argv, output);
  }

  ::testing::AssertionResult Annotate(std::vector<std::string> changes) {
    return AnnotatePod(pod_, std::move(changes));
  }
  ::testing::AssertionResult AnnotatePod(const std::string& pod, std::vector<std::string> changes) {
    std::vector<std::string> args = {"annotate", "pod", pod, "--overwrite"};
    args.insert(args.end(), changes.begin(), changes.end());
    std::string output;
    if (Kubectl(args, &output) != 0) return ::testing::AssertionFailure() << output;
    return ::testing::AssertionSuccess();
  }

  // The sandbox's kubeconfig with the admin's token replaced by one of default/podlb-test-server.
  std::string ServiceAccountKubeconfig() {
    std::string token;
    EXPECT_EQ(Kubectl({"create", "token", "podlb-test-server", "-n", "default"}, &token), 0)
        << token;
    while (!token.empty() && token.back() == '\n') token.pop_back();
    std::string text = ReadFile(cluster_->kubeconfig());
    std::string replaced =
        std::regex_replace(text, std::regex("token: \"?[^\"\n]*\"?"), "token: \"" + token + "\"");
    EXPECT_NE(replaced, text);
    std::string path = cluster_->dir() + "/kubeconfig-test-server";
    WriteFile(path, replaced);
    return path;
  }

  // The test-server following pod_ (its log, on stderr, joins stdout where the test reads it),
  // and a stub on its port.
  void StartTestServer() {
    server_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{"/bin/sh", "-c", "exec \"$0\" \"$@\" 2>&1", PodlbBinary(),
                                 "test-server", "--listen", "127.0.0.1:0", "--drain", "0",
                                 "--faults-from-pod", "--kubeconfig", ServiceAccountKubeconfig()},
        std::vector<std::string>{"POD_NAME=" + pod_, "POD_NAMESPACE=default"});
    const std::string marker = " serving on 127.0.0.1:";
    ASSERT_TRUE(server_->WaitForLineContaining(marker, kTimeout));
    int port = 0;
    for (const std::string& line : server_->Lines()) {
      if (auto at = line.find(marker); at != std::string::npos)
        port = std::stoi(line.substr(at + marker.size()));
    }
    ASSERT_GT(port, 0);
    stub_ = grpc::testing::TestService::NewStub(grpc::CreateChannel(
        "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  }

  // Waits for a log line containing `needle` printed after the first `after` lines.
  ::testing::AssertionResult WaitForLogAfter(size_t after, const std::string& needle) {
    size_t index = 0;
    return server_->WaitForLine(
        [&](const std::string& line) {
          return index++ >= after && line.find(needle) != std::string::npos;
        },
        kTimeout);
  }

  // The fault the test-server applied, as its BackendPod logs it ("delay=1s", ...), after line
  // `after`.
  ::testing::AssertionResult WaitForFault(size_t after, const std::string& fault) {
    return WaitForLogAfter(after, "pod " + pod_ + ": fault " + fault);
  }
  // The test-server read its Pod's annotations for the first time.
  ::testing::AssertionResult WaitForFirstRead() {
    return server_->WaitForLineContaining(
        "pod default/" + pod_ + ": fault annotations read: fault none", kTimeout);
  }

  CallResult Call(std::chrono::milliseconds timeout = 5s) { return CallOn(*stub_, timeout); }
  static CallResult CallOn(grpc::testing::TestService::Stub& stub,
                           std::chrono::milliseconds timeout = 5s) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + timeout);
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    auto start = Clock::now();
    grpc::Status status = stub.UnaryCall(&context, request, &response);
    return {status.error_code(), response.hostname(), Clock::now() - start};
  }

  std::unique_ptr<SandboxCluster> cluster_;
  std::string pod_;
  std::unique_ptr<ChildProcess> server_;
  std::unique_ptr<grpc::testing::TestService::Stub> stub_;
};

TEST_F(TestServerFaultsTest, FollowsItsPodsFaultAnnotations) {
  ASSERT_NO_FATAL_FAILURE(StartTestServer());
  ASSERT_TRUE(WaitForFirstRead());
  CallResult healthy = Call();
  EXPECT_EQ(healthy.code, grpc::StatusCode::OK);
  EXPECT_EQ(healthy.hostname, pod_);  // POD_NAME names the server too

  size_t lines = server_->Lines().size();
  ASSERT_TRUE(Annotate({"podlb.io/fault-delay=1s"}));
  ASSERT_TRUE(WaitForFault(lines, "delay=1s"));
  CallResult slow = Call();
  EXPECT_EQ(slow.code, grpc::StatusCode::OK);
  EXPECT_GE(slow.took, 1s);

  lines = server_->Lines().size();
  ASSERT_TRUE(Annotate({"podlb.io/fault-delay-", "podlb.io/fault-error-rate=1"}));
  ASSERT_TRUE(WaitForFault(lines, "error-rate=1 error-code=UNAVAILABLE"));
  EXPECT_EQ(Call().code, grpc::StatusCode::UNAVAILABLE);

  // The sandbox refuses a bad value (422, as its kubelet could not apply it); the pod and so the
  // test-server keep the fault they had. (A real API server stores it: the test-server's own
  // handling of a bad value is pod_fault_follower_test's.)
  EXPECT_FALSE(Annotate({"podlb.io/fault-error-rate=2"}));
  EXPECT_EQ(Call().code, grpc::StatusCode::UNAVAILABLE);

  lines = server_->Lines().size();
  ASSERT_TRUE(Annotate({"podlb.io/fault-error-rate-"}));
  ASSERT_TRUE(WaitForFault(lines, "none"));
  CallResult healed = Call(900ms);  // under the 1 s delay it had
  EXPECT_EQ(healed.code, grpc::StatusCode::OK);

  // The API server goes away: the watch fails, is retried, and the server keeps serving with the
  // fault it had.
  lines = server_->Lines().size();
  ASSERT_TRUE(Annotate({"podlb.io/fault-delay=1s"}));
  ASSERT_TRUE(WaitForFault(lines, "delay=1s"));
  lines = server_->Lines().size();
  cluster_->Stop();
  ASSERT_TRUE(WaitForLogAfter(lines, "retrying with backoff"));
  CallResult after_stop = Call();
  EXPECT_EQ(after_stop.code, grpc::StatusCode::OK);
  EXPECT_GE(after_stop.took, 1s);
  EXPECT_EQ(server_->Terminate(), 0);
}

TEST_F(TestServerFaultsTest, AMissingRoleBindingIsNamedAndTheServerKeepsServingUntilGranted) {
  std::string output;
  ASSERT_EQ(Kubectl({"delete", "rolebinding", "podlb-test-server", "-n", "default"}, &output), 0)
      << output;
  ASSERT_NO_FATAL_FAILURE(StartTestServer());
  ASSERT_TRUE(server_->WaitForLine(
      [](const std::string& line) {
        return line.find("kubernetes: 403 Forbidden listing pods") != std::string::npos &&
               line.find("needs get/list/watch on pods (core v1) in namespace default") !=
                   std::string::npos &&
               line.find("retrying with backoff") != std::string::npos;
      },
      kTimeout));
  EXPECT_EQ(Call().code, grpc::StatusCode::OK);

  ASSERT_EQ(Kubectl({"apply", "-f", SourceDir() + kRbac}, &output), 0) << output;
  ASSERT_TRUE(WaitForFirstRead());
  size_t lines = server_->Lines().size();
  ASSERT_TRUE(Annotate({"podlb.io/fault-error-rate=1"}));
  ASSERT_TRUE(WaitForFault(lines, "error-rate=1 error-code=UNAVAILABLE"));
  EXPECT_EQ(Call().code, grpc::StatusCode::UNAVAILABLE);
}

// The demo's backend as it runs on a cluster: a Deployment of the podlb-demo image running
// `test-server --faults-from-pod` with its ServiceAccount's in-cluster credentials (the sandbox
// mounts them under PODLB_SERVICEACCOUNT_DIR) and its name and namespace from the downward API.
TEST_F(TestServerFaultsTest, AProcessPodFollowsItsAnnotationsWithItsServiceAccount) {
  const std::string manifest = cluster_->dir() + "/backend.yaml";
  WriteFile(manifest, R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: backend
  namespace: default
spec:
  replicas: 1
  selector:
    matchLabels: {app: backend}
  template:
    metadata:
      labels: {app: backend}
    spec:
      serviceAccountName: podlb-test-server
      containers:
        - name: test-server
          image: localhost/podlb-demo:0.1.0
          args: ["test-server", "--listen", "$(POD_IP):50051", "--drain", "0", "--faults-from-pod"]
          env:
            - name: POD_NAME
              valueFrom: {fieldRef: {fieldPath: metadata.name}}
            - name: POD_NAMESPACE
              valueFrom: {fieldRef: {fieldPath: metadata.namespace}}
            - name: POD_IP
              valueFrom: {fieldRef: {fieldPath: status.podIP}}
)");
  // The pod's name as the Deployment creates it, from a watch started before the apply.
  ChildProcess pods({"kubectl", "--kubeconfig", cluster_->kubeconfig(), "get", "pods", "-l",
                     "app=backend", "--watch", "-o", "name"});
  std::string output;
  ASSERT_EQ(Kubectl({"apply", "-f", manifest}, &output), 0) << output;
  ASSERT_TRUE(pods.WaitForLineContaining("pod/backend-", kTimeout));
  const std::string pod = pods.Lines().front().substr(std::string("pod/").size());

  // Its log, followed as it is written (what `kubectl logs -f` would show).
  ChildProcess log(
      {"tail", "-F", "-n", "+1", cluster_->dir() + "/pods/default/" + pod + "/test-server.log"});
  const std::string marker = "podlb test-server: " + pod + " serving on ";
  ASSERT_TRUE(log.WaitForLineContaining(marker, kTimeout));
  ASSERT_TRUE(log.WaitForLineContaining(
      "pod default/" + pod + ": fault annotations read: fault none", kTimeout));
  std::string address;
  for (const std::string& line : log.Lines()) {
    if (auto at = line.find(marker); at != std::string::npos)
      address = line.substr(at + marker.size());
  }
  auto stub = grpc::testing::TestService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  CallResult healthy = CallOn(*stub);
  EXPECT_EQ(healthy.code, grpc::StatusCode::OK);
  EXPECT_EQ(healthy.hostname, pod);

  size_t lines = log.Lines().size();
  ASSERT_TRUE(AnnotatePod(
      pod, {"podlb.io/fault-error-rate=1", "podlb.io/fault-error-code=RESOURCE_EXHAUSTED"}));
  size_t index = 0;
  ASSERT_TRUE(log.WaitForLine(
      [&](const std::string& line) {
        return index++ >= lines &&
               line.find("pod " + pod + ": fault error-rate=1 error-code=RESOURCE_EXHAUSTED") !=
                   std::string::npos;
      },
      kTimeout));
  EXPECT_EQ(CallOn(*stub).code, grpc::StatusCode::RESOURCE_EXHAUSTED);
}

}  // namespace
}  // namespace podlb::testing
