// Faults driven through the Kubernetes API: the Sandbox in-process with real pods, annotated by
// real kubectl, by `podlb sandbox fault` (the built binary) and by SandboxClient. Each fault shows
// on calls to that pod (and not to the other one) within a second of the write, the pod stays
// ready, removing the annotations heals it, and bad values are refused with a 422 that leaves
// the stored pod as it was.
#include <unistd.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/testing/test.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "sandbox/controller_test_support.h"
#include "sandbox/sandbox.h"
#include "sandbox/sandbox_client.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using testing::EndpointsOf;
using testing::ExactlyReady;
using ::testing::HasSubstr;
using testing::Objects;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
constexpr auto kTimeout = std::chrono::seconds(15);
// The contract: a change of the annotations reaches the pod well under a second after the write.
constexpr auto kReaction = std::chrono::seconds(1);

struct CallResult {
  grpc::StatusCode code;
  std::string message;
  Clock::duration took;
};

class SandboxFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SandboxOptions options;
    options.replicas = 2;
    options.pod_port = static_cast<uint16_t>(podlb::testing::PickFreePort());
    // Our own /24 of loopback, so parallel test binaries never share pod addresses.
    options.first_pod_ip = "127.12." + std::to_string(getpid() % 250 + 1) + ".2";
    options.grace_period = 200ms;
    port_ = options.pod_port;
    sandbox_ = std::make_unique<Sandbox>(options);
    absl::Status status = sandbox_->Start();
    ASSERT_TRUE(status.ok()) << status;
    podlb::testing::WriteFile(dir_.path() + "/kubeconfig", sandbox_->Kubeconfig());
    ASSERT_TRUE(testing::WaitForObjects(sandbox_->store(), "endpointslices", "default",
                                        ExactlyReady(2), kTimeout, "2 ready endpoints"));
    for (const auto& e : EndpointsOf(Slices())) pods_.emplace_back(e.pod, e.ip);
    ASSERT_EQ(pods_.size(), 2u);
    target_ = pods_[0].first;
    other_ = pods_[1].first;
  }

  Objects Slices() {
    return sandbox_->store().List("endpointslices", "default", LabelSelector{}).items;
  }

  std::shared_ptr<grpc::Channel> Channel(const std::string& pod) {
    auto& channel = channels_[pod];
    if (!channel) {
      for (const auto& [name, ip] : pods_) {
        if (name == pod) {
          channel = grpc::CreateChannel(ip + ":" + std::to_string(port_),
                                        grpc::InsecureChannelCredentials());
        }
      }
    }
    return channel;
  }

  CallResult Call(const std::string& pod, std::chrono::milliseconds deadline = 5s) {
    auto stub = grpc::testing::TestService::NewStub(Channel(pod));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + deadline);
    grpc::testing::SimpleResponse response;
    auto start = Clock::now();
    grpc::Status status = stub->UnaryCall(&context, grpc::testing::SimpleRequest(), &response);
    if (status.ok()) {
      EXPECT_EQ(response.hostname(), pod);
    }
    return {status.error_code(), status.error_message(), Clock::now() - start};
  }

  // The pod's readiness probe still passes, and the EndpointSlice still lists it ready.
  void ExpectStillReady(const std::string& pod) {
    auto stub = grpc::health::v1::Health::NewStub(Channel(pod));
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + 2s);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status = stub->Check(&context, grpc::health::v1::HealthCheckRequest(), &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.status(), grpc::health::v1::HealthCheckResponse::SERVING);
    EXPECT_TRUE(ExactlyReady(2)(Slices()));
  }

  // Waits (up to kReaction from now) until the pod's runtime holds `fault`.
  [[nodiscard]] ::testing::AssertionResult WaitPodFault(const std::string& pod,
                                                        const PodFault& fault) {
    auto backend = sandbox_->FindPod(pod);
    if (!backend) return ::testing::AssertionFailure() << "no running pod " << pod;
    return podlb::testing::WaitFor([&] { return backend->fault() == fault; }, kReaction,
                                   "pod " + pod + " to have fault " + fault.ToString());
  }

  int Kubectl(std::vector<std::string> args, std::string* out) {
    std::vector<std::string> argv = {"kubectl", "--kubeconfig", dir_.path() + "/kubeconfig",
                                     "--cache-dir", dir_.path() + "/cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return podlb::testing::RunCommand(argv, out, 60s);
  }

  int Podlb(std::vector<std::string> args, std::string* out) {
    args.insert(args.begin(),
                {podlb::testing::PodlbBinary(), "sandbox", "fault", "--state-dir", dir_.path()});
    return podlb::testing::RunCommand(args, out, 30s);
  }

  json StoredPod(const std::string& pod) {
    auto object = sandbox_->store().Get("pods", "default", pod);
    EXPECT_TRUE(object.ok()) << object.status();
    return object.ok() ? *object : json();
  }

  json Annotations(const std::string& pod) {
    return StoredPod(pod)["metadata"].value("annotations", json::object());
  }

  podlb::testing::TempDir dir_;
  uint16_t port_ = 0;
  std::unique_ptr<Sandbox> sandbox_;
  std::vector<std::pair<std::string, std::string>> pods_;  // name, IP
  std::map<std::string, std::shared_ptr<grpc::Channel>> channels_;
  std::string target_, other_;
};

TEST_F(SandboxFaultsTest, KubectlAnnotateInjectsEachFaultAndRemovingItHeals) {
  std::string out;
  // Delay.
  ASSERT_EQ(Kubectl({"annotate", "pod", target_, "podlb.io/fault-delay=300ms"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("pod/" + target_ + " annotated"));
  ASSERT_TRUE(WaitPodFault(target_, PodFault{.delay = absl::Milliseconds(300)}));
  EXPECT_GE(Call(target_).took, 300ms);
  EXPECT_LT(Call(other_).took, 300ms);
  ExpectStillReady(target_);
  ASSERT_EQ(Kubectl({"annotate", "pod", target_, "podlb.io/fault-delay-"}, &out), 0) << out;
  ASSERT_TRUE(WaitPodFault(target_, PodFault{}));
  CallResult healed = Call(target_);
  EXPECT_EQ(healed.code, grpc::StatusCode::OK) << healed.message;
  EXPECT_LT(healed.took, 300ms);

  // Errors with a chosen code, then the default code when only the rate is left.
  ASSERT_EQ(Kubectl({"annotate", "pod", target_, "podlb.io/fault-error-rate=1",
                     "podlb.io/fault-error-code=INTERNAL"},
                    &out),
            0)
      << out;
  ASSERT_TRUE(
      WaitPodFault(target_, PodFault{.error_rate = 1, .error_code = absl::StatusCode::kInternal}));
  for (int i = 0; i < 5; ++i) EXPECT_EQ(Call(target_).code, grpc::StatusCode::INTERNAL);
  EXPECT_EQ(Call(other_).code, grpc::StatusCode::OK);
  ExpectStillReady(target_);
  ASSERT_EQ(Kubectl({"annotate", "pod", target_, "podlb.io/fault-error-code-"}, &out), 0) << out;
  ASSERT_TRUE(WaitPodFault(target_, PodFault{.error_rate = 1}));
  EXPECT_EQ(Call(target_).code, grpc::StatusCode::UNAVAILABLE);
  ASSERT_EQ(Kubectl({"annotate", "pod", target_, "podlb.io/fault-error-rate-"}, &out), 0) << out;
  ASSERT_TRUE(WaitPodFault(target_, PodFault{}));
  EXPECT_EQ(Call(target_).code, grpc::StatusCode::OK);

  // Stuck: the call hits its deadline while the pod stays ready; removing it heals.
  ASSERT_EQ(Kubectl({"annotate", "pod", target_, "podlb.io/fault-stuck=true"}, &out), 0) << out;
  ASSERT_TRUE(WaitPodFault(target_, PodFault{.stuck = true}));
  CallResult stuck = Call(target_, 300ms);
  EXPECT_EQ(stuck.code, grpc::StatusCode::DEADLINE_EXCEEDED) << stuck.message;
  EXPECT_EQ(Call(other_).code, grpc::StatusCode::OK);
  ExpectStillReady(target_);
  ASSERT_EQ(Kubectl({"annotate", "pod", target_, "podlb.io/fault-stuck-"}, &out), 0) << out;
  ASSERT_TRUE(WaitPodFault(target_, PodFault{}));
  EXPECT_EQ(Call(target_).code, grpc::StatusCode::OK);
  EXPECT_EQ(Annotations(target_).count("podlb.io/fault-stuck"), 0u);
}

TEST_F(SandboxFaultsTest, KubectlBadValuesAre422AndLeaveThePodAsItWas) {
  std::string out;
  ASSERT_EQ(Kubectl({"annotate", "pod", target_, "podlb.io/fault-delay=25ms"}, &out), 0) << out;
  ASSERT_TRUE(WaitPodFault(target_, PodFault{.delay = absl::Milliseconds(25)}));
  json before = StoredPod(target_);

  const std::pair<std::string, std::string> bad[] = {
      {"podlb.io/fault-delay", "abc"},       {"podlb.io/fault-delay", "-5ms"},
      {"podlb.io/fault-error-rate", "1.5"},  {"podlb.io/fault-error-rate", "x"},
      {"podlb.io/fault-error-code", "NOPE"}, {"podlb.io/fault-stuck", "maybe"}};
  for (const auto& [key, value] : bad) {
    EXPECT_NE(Kubectl({"annotate", "--overwrite", "pod", target_, key + "=" + value}, &out), 0);
    // kubectl's rendering of the 422 Status: details.kind and name, then each cause.
    EXPECT_THAT(out, HasSubstr("The Pod \"" + target_ + "\" is invalid: metadata.annotations[" +
                               key + "]: Invalid value: \"" + value + "\": must be"))
        << out;
  }
  EXPECT_EQ(StoredPod(target_), before);  // same resourceVersion, same annotations
  EXPECT_EQ(sandbox_->FindPod(target_)->fault(), PodFault{.delay = absl::Milliseconds(25)});
  EXPECT_EQ(Call(target_).code, grpc::StatusCode::OK);

  // A manifest is checked the same way.
  std::string manifest = dir_.path() + "/pod.yaml";
  podlb::testing::WriteFile(manifest,
                            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad-pod\n"
                            "  annotations:\n    podlb.io/fault-stuck: maybe\n"
                            "spec:\n  containers:\n  - name: greeter\n    image: greeter\n");
  EXPECT_NE(Kubectl({"create", "-f", manifest}, &out), 0);
  EXPECT_THAT(out, HasSubstr("The Pod \"bad-pod\" is invalid: "
                             "metadata.annotations[podlb.io/fault-stuck]: Invalid value: "
                             "\"maybe\": must be \"true\" or \"false\""));
  EXPECT_EQ(sandbox_->store().Get("pods", "default", "bad-pod").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SandboxFaultsTest, CliSetsReplacesAndClearsTheFault) {
  std::string out;
  ASSERT_EQ(Podlb({"default/" + target_, "--error-rate", "1", "--error-code", "RESOURCE_EXHAUSTED"},
                  &out),
            0)
      << out;
  EXPECT_THAT(
      out, HasSubstr("pod/" + target_ + " fault set: error-rate=1 error-code=RESOURCE_EXHAUSTED"));
  ASSERT_TRUE(WaitPodFault(
      target_, PodFault{.error_rate = 1, .error_code = absl::StatusCode::kResourceExhausted}));
  EXPECT_EQ(Call(target_).code, grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Annotations(target_)["podlb.io/fault-error-code"], "RESOURCE_EXHAUSTED");

  // The flags state the whole fault: the error annotations go, stuck comes.
  ASSERT_EQ(Podlb({target_, "--stuck"}, &out), 0) << out;
  ASSERT_TRUE(WaitPodFault(target_, PodFault{.stuck = true}));
  EXPECT_EQ(Call(target_, 300ms).code, grpc::StatusCode::DEADLINE_EXCEEDED);
  json annotations = Annotations(target_);
  EXPECT_EQ(annotations["podlb.io/fault-stuck"], "true");
  EXPECT_EQ(annotations.count("podlb.io/fault-error-rate"), 0u) << annotations.dump();

  ASSERT_EQ(Podlb({"pod/" + target_, "--delay", "250ms"}, &out), 0) << out;
  ASSERT_TRUE(WaitPodFault(target_, PodFault{.delay = absl::Milliseconds(250)}));
  EXPECT_GE(Call(target_).took, 250ms);

  ASSERT_EQ(Podlb({target_, "--clear"}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("pod/" + target_ + " fault cleared"));
  ASSERT_TRUE(WaitPodFault(target_, PodFault{}));
  EXPECT_EQ(Call(target_).code, grpc::StatusCode::OK);
  for (const auto& key : PodFaultAnnotationKeys()) EXPECT_EQ(Annotations(target_).count(key), 0u);
}

TEST_F(SandboxFaultsTest, CliBadFlagsExitTwoWithTheReason) {
  struct Case {
    std::vector<std::string> args;
    std::string reason;
  };
  const Case cases[] = {
      {{target_, "--delay", "abc"}, "--delay \"abc\": must be a duration"},
      {{target_, "--delay", "-5ms"}, "--delay \"-5ms\": must be a duration from 0 to 1h"},
      {{target_, "--error-rate", "1.5"}, "--error-rate \"1.5\": must be a number from 0 to 1"},
      {{target_, "--error-rate", "1", "--error-code", "NOPE"},
       "--error-code \"NOPE\": must be the name of a gRPC status code"},
      {{target_, "--error-code", "INTERNAL"}, "--error-code needs --error-rate"},
      {{target_, "--clear", "--stuck"}, "--clear removes the fault"},
      {{target_}, "nothing to do"},
      {{"--stuck"}, "the pod must be NAMESPACE/NAME or NAME"},
      {{"a/b/c", "--stuck"}, "the pod must be NAMESPACE/NAME or NAME"},
      {{target_, "--stuck=maybe"}, ""},  // CLI11's own usage error
      {{target_, "--no-such-flag"}, ""},
  };
  for (const Case& c : cases) {
    std::string out;
    EXPECT_EQ(Podlb(c.args, &out), 2) << out;
    EXPECT_THAT(out, HasSubstr(c.reason)) << out;
  }
  EXPECT_EQ(StoredPod(target_)["metadata"]
                .value("annotations", json::object())
                .count("podlb.io/fault-stuck"),
            0u);

  std::string out;
  EXPECT_EQ(Podlb({"default/no-such-pod", "--stuck"}, &out), 1);
  EXPECT_THAT(out, HasSubstr("pod default/no-such-pod not found"));
}

TEST_F(SandboxFaultsTest, SandboxClientSetsAndClearsFaults) {
  auto creds = LoadKubeconfig(dir_.path() + "/kubeconfig");
  ASSERT_TRUE(creds.ok()) << creds.status();
  SandboxClient client(*creds);

  PodFault fault{.delay = absl::Milliseconds(200),
                 .error_rate = 1,
                 .error_code = absl::StatusCode::kUnavailable};
  absl::Status status = client.SetPodFault("default", target_, fault);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_TRUE(WaitPodFault(target_, fault));
  CallResult call = Call(target_);
  EXPECT_EQ(call.code, grpc::StatusCode::UNAVAILABLE);
  EXPECT_GE(call.took, 200ms);  // delayed, then failed

  // A fault the server refuses comes back as the 422's message; the pod keeps its fault.
  status = client.SetPodFault("default", target_, PodFault{.error_rate = 2});
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("HTTP 422: Pod \"" + target_ +
                        "\" is invalid: metadata.annotations[podlb.io/fault-error-rate]: "
                        "Invalid value: \"2\": must be a number from 0 to 1"));
  EXPECT_EQ(sandbox_->FindPod(target_)->fault(), fault);

  status = client.ClearPodFault("default", target_);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_TRUE(WaitPodFault(target_, PodFault{}));
  EXPECT_EQ(Call(target_).code, grpc::StatusCode::OK);

  EXPECT_EQ(client.SetPodFault("default", "no-such-pod", fault).code(),
            absl::StatusCode::kNotFound);
}

TEST_F(SandboxFaultsTest, FaultInThePodTemplateStartsNewPodsFaulty) {
  auto creds = LoadKubeconfig(dir_.path() + "/kubeconfig");
  ASSERT_TRUE(creds.ok()) << creds.status();
  SandboxClient client(*creds);
  json patch = {{"spec",
                 {{"template",
                   {{"metadata",
                     {{"annotations",
                       {{"podlb.io/fault-error-rate", "1"},
                        {"podlb.io/fault-error-code", "INTERNAL"}}}}}}}}}};
  auto patched = client.Request("PATCH", "/apis/apps/v1/namespaces/default/deployments/greeter",
                                "application/strategic-merge-patch+json", patch.dump());
  ASSERT_TRUE(patched.ok()) << patched.status();
  // The template changed, so the pods roll; the new ones are faulty from their first call.
  std::set<std::string> old = {target_, other_};
  ASSERT_TRUE(testing::WaitForObjects(
      sandbox_->store(), "endpointslices", "default",
      [&](const Objects& slices) {
        if (!ExactlyReady(2)(slices)) return false;
        for (const auto& e : EndpointsOf(slices)) {
          if (old.count(e.pod)) return false;
        }
        return true;
      },
      kTimeout, "2 new ready pods"));
  for (const auto& pod : sandbox_->Pods()) {
    if (old.count(pod->name())) continue;  // still shutting down
    EXPECT_EQ(pod->fault(), (PodFault{.error_rate = 1, .error_code = absl::StatusCode::kInternal}))
        << pod->name();
    EXPECT_EQ(pod->calls_failed_by_fault(), 0u);  // the readiness probe is no TestService call
  }
}

}  // namespace
}  // namespace podlb::sandbox
