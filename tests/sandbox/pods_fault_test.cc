// A BackendPod under each PodFault, called by a real grpc++ client: a delay holds every call at
// least that long, an error rate answers that share of calls with the chosen code, a stuck pod
// accepts connections but answers nothing, and all the while the health service says SERVING.
// Clearing heals at once and lets held calls go; shutdown is not held up by stuck calls, and
// held calls cost no server thread.
#include <dirent.h>

#include <atomic>
#include <thread>

#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/testing/test.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "sandbox/pods/backend_pod.h"
#include "sandbox/pods/pod_runtime.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;
using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::unique_ptr<BackendPod> StartPod(PodFault fault = {}) {
  auto pod = std::make_unique<BackendPod>(
      BackendPodOptions{.name = "faulty", .ip = "127.0.0.1", .port = 0, .fault = fault});
  absl::Status status = pod->Start();
  EXPECT_TRUE(status.ok()) << status;
  return pod;
}

std::shared_ptr<grpc::Channel> Dial(const BackendPod& pod) {
  return grpc::CreateChannel(pod.address(), grpc::InsecureChannelCredentials());
}

struct CallResult {
  grpc::Status status;
  Clock::duration took;
};

CallResult Unary(const std::shared_ptr<grpc::Channel>& channel,
                 std::chrono::milliseconds deadline = 5s) {
  auto stub = grpc::testing::TestService::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + deadline);
  grpc::testing::SimpleResponse response;
  auto start = Clock::now();
  grpc::Status status = stub->UnaryCall(&context, grpc::testing::SimpleRequest(), &response);
  return {status, Clock::now() - start};
}

// The readiness probe as the kubelet sends it; it must not be touched by any fault.
grpc::Status Health(const std::shared_ptr<grpc::Channel>& channel,
                    HealthCheckResponse::ServingStatus* serving) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 2s);
  HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, HealthCheckRequest(), &response);
  *serving = response.status();
  return status;
}

void ExpectServing(const std::shared_ptr<grpc::Channel>& channel) {
  HealthCheckResponse::ServingStatus serving{};
  grpc::Status status = Health(channel, &serving);
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(serving, HealthCheckResponse::SERVING);
}

PodFault Delay(absl::Duration d) { return PodFault{.delay = d}; }
PodFault Errors(double rate, absl::StatusCode code) {
  return PodFault{.error_rate = rate, .error_code = code};
}
PodFault Stuck() { return PodFault{.stuck = true}; }

// Threads of this process (the pod's server runs in it).
int ThreadCount() {
  int n = 0;
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return -1;
  while (dirent* entry = readdir(dir)) n += entry->d_name[0] != '.' ? 1 : 0;
  closedir(dir);
  return n;
}

TEST(PodFaultTest, DelayHoldsEveryCallButNotTheHealthCheck) {
  auto pod = StartPod(Delay(absl::Milliseconds(200)));
  auto channel = Dial(*pod);
  for (int i = 0; i < 3; ++i) {
    CallResult call = Unary(channel);
    ASSERT_TRUE(call.status.ok()) << call.status.error_message();
    EXPECT_GE(call.took, 200ms);
  }
  // A delay longer than the probe's deadline: a delayed probe would fail.
  pod->SetFault(Delay(absl::Seconds(10)));
  ExpectServing(channel);
  EXPECT_EQ(pod->fault().delay, absl::Seconds(10));

  pod->SetFault({});
  CallResult healed = Unary(channel);
  ASSERT_TRUE(healed.status.ok()) << healed.status.error_message();
  EXPECT_LT(healed.took, 200ms);
}

TEST(PodFaultTest, ErrorRateOneFailsEveryCallWithTheChosenCode) {
  auto pod = StartPod();
  pod->SetFault(Errors(1.0, absl::StatusCode::kResourceExhausted));
  auto channel = Dial(*pod);
  for (int i = 0; i < 20; ++i) {
    CallResult call = Unary(channel);
    EXPECT_EQ(call.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
    EXPECT_THAT(call.status.error_message(), HasSubstr("podlb.io/fault-error-rate"));
  }
  // Streaming calls and EmptyCall are TestService calls too.
  auto stub = grpc::testing::TestService::NewStub(channel);
  {
    grpc::ClientContext context;
    grpc::testing::Empty empty;
    EXPECT_EQ(stub->EmptyCall(&context, empty, &empty).error_code(),
              grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  {
    grpc::ClientContext context;
    grpc::testing::StreamingOutputCallRequest request;
    request.add_response_parameters()->set_size(1);
    auto reader = stub->StreamingOutputCall(&context, request);
    grpc::testing::StreamingOutputCallResponse response;
    EXPECT_FALSE(reader->Read(&response));
    EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  }
  EXPECT_EQ(pod->calls_failed_by_fault(), 22u);
  ExpectServing(channel);
}

TEST(PodFaultTest, ErrorRateHalfFailsAboutHalfOfTheCalls) {
  auto pod = StartPod(Errors(0.5, absl::StatusCode::kUnavailable));
  auto channel = Dial(*pod);
  int failed = 0;
  for (int i = 0; i < 400; ++i) {
    CallResult call = Unary(channel);
    if (!call.status.ok()) {
      EXPECT_EQ(call.status.error_code(), grpc::StatusCode::UNAVAILABLE);
      ++failed;
    }
  }
  EXPECT_GE(failed, 140);  // 35 %
  EXPECT_LE(failed, 260);  // 65 %
  EXPECT_EQ(pod->calls_failed_by_fault(), static_cast<uint64_t>(failed));
}

TEST(PodFaultTest, StuckPodAcceptsConnectionsAnswersNothingAndStaysServing) {
  auto pod = StartPod(Stuck());
  auto channel = Dial(*pod);
  CallResult call = Unary(channel, 300ms);
  EXPECT_EQ(call.status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_GE(call.took, 300ms);
  ExpectServing(channel);

  // A new connection is accepted too; its call hangs the same way, streaming or not.
  auto fresh = Dial(*pod);
  ASSERT_TRUE(fresh->WaitForConnected(std::chrono::system_clock::now() + 2s));
  auto stub = grpc::testing::TestService::NewStub(fresh);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + 300ms);
  grpc::testing::StreamingOutputCallRequest request;
  request.add_response_parameters()->set_size(1);
  auto reader = stub->StreamingOutputCall(&context, request);
  grpc::testing::StreamingOutputCallResponse response;
  EXPECT_FALSE(reader->Read(&response));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  ExpectServing(fresh);

  EXPECT_EQ(pod->calls_held_stuck(), 2u);
  // The server lets go of calls whose client gave up.
  EXPECT_TRUE(testing::WaitFor([&] { return pod->calls_held_now() == 0; }, 5s,
                               "the expired calls to be let go"));
}

TEST(PodFaultTest, ClearingHealsAtOnceAndLetsHeldCallsGo) {
  auto pod = StartPod(Stuck());
  auto channel = Dial(*pod);
  CallResult held;
  std::thread caller([&] { held = Unary(channel, 10s); });
  ASSERT_TRUE(
      testing::WaitFor([&] { return pod->calls_held_now() == 1; }, 5s, "the call to be held"));
  auto cleared_at = Clock::now();
  pod->SetFault({});
  caller.join();
  EXPECT_TRUE(held.status.ok()) << held.status.error_message();
  EXPECT_LT(Clock::now() - cleared_at, 2s);
  CallResult after = Unary(channel);
  EXPECT_TRUE(after.status.ok()) << after.status.error_message();

  // A long delay is let go the same way when it is removed.
  pod->SetFault(Delay(absl::Seconds(30)));
  std::thread delayed_caller([&] { held = Unary(channel, 10s); });
  ASSERT_TRUE(
      testing::WaitFor([&] { return pod->calls_held_now() == 1; }, 5s, "the call to be delayed"));
  pod->SetFault({});
  delayed_caller.join();
  EXPECT_TRUE(held.status.ok()) << held.status.error_message();
}

TEST(PodFaultTest, ShutdownAnswersStuckCallsInsteadOfWaitingForThem) {
  auto pod = StartPod(Stuck());
  auto channel = Dial(*pod);
  std::vector<CallResult> results(3);
  std::vector<std::thread> callers;
  for (auto& result : results) {
    callers.emplace_back([&channel, &result] { result = Unary(channel, 30s); });
  }
  ASSERT_TRUE(
      testing::WaitFor([&] { return pod->calls_held_now() == 3; }, 5s, "3 calls to be held"));
  auto start = Clock::now();
  pod->Shutdown(std::chrono::seconds(20));
  EXPECT_LT(Clock::now() - start, 5s);
  for (auto& caller : callers) caller.join();
  for (const auto& result : results) {
    EXPECT_EQ(result.status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << result.status.error_message();
  }
}

TEST(PodFaultTest, HeldCallsCostNoServerThread) {
  auto pod = StartPod(Stuck());
  auto channel = Dial(*pod);
  ASSERT_TRUE(channel->WaitForConnected(std::chrono::system_clock::now() + 5s));
  auto stub = grpc::testing::TestService::NewStub(channel);
  // Async client calls, so the client side adds no thread per call either.
  constexpr int kCalls = 200;
  grpc::CompletionQueue cq;
  struct Call {
    grpc::ClientContext context;
    grpc::testing::SimpleResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::testing::SimpleResponse>> reader;
  };
  std::vector<Call> calls(kCalls);
  int threads_before = ThreadCount();
  for (int i = 0; i < kCalls; ++i) {
    calls[i].context.set_deadline(std::chrono::system_clock::now() + 20s);
    calls[i].reader = stub->AsyncUnaryCall(&calls[i].context, grpc::testing::SimpleRequest(), &cq);
    calls[i].reader->Finish(&calls[i].response, &calls[i].status, &calls[i]);
  }
  ASSERT_TRUE(testing::WaitFor([&] { return pod->calls_held_now() == kCalls; }, 10s,
                               "every call to be held"));
  int threads_held = ThreadCount();
  EXPECT_LT(threads_held - threads_before, 20)
      << threads_before << " threads before, " << threads_held << " with " << kCalls
      << " calls held";
  ExpectServing(channel);

  pod->SetFault({});
  for (int i = 0; i < kCalls; ++i) {
    void* tag = nullptr;
    bool ok = false;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    auto* call = static_cast<Call*>(tag);
    EXPECT_TRUE(call->status.ok()) << call->status.error_message();
  }
  cq.Shutdown();
  void* tag;
  bool ok;
  while (cq.Next(&tag, &ok)) {
  }
}

TEST(PodFaultTest, RuntimeStartsPodsWithTheirFaultAndChangesIt) {
  GrpcPodRuntime runtime;
  int port = testing::PickFreePort();
  ASSERT_TRUE(runtime
                  .StartPod({.name = "a",
                             .ip = "127.0.0.1",
                             .port = static_cast<uint16_t>(port),
                             .fault = Errors(1.0, absl::StatusCode::kInternal)})
                  .ok());
  auto channel =
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials());
  EXPECT_EQ(Unary(channel).status.error_code(), grpc::StatusCode::INTERNAL);
  EXPECT_TRUE(runtime.ProbeReadiness("a").ok());  // the probe is not a TestService call
  runtime.SetFault("a", {});
  EXPECT_TRUE(Unary(channel).status.ok());
  runtime.SetFault("no-such-pod", Stuck());  // ignored
  runtime.StopPod("a", 100ms);
}

}  // namespace
}  // namespace podlb::sandbox
