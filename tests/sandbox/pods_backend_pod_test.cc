// BackendPod: a real grpc++ server on loopback answers the TestService with its name, reports
// health through its lifecycle and shuts down letting in-flight calls finish.
#include <thread>

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

std::unique_ptr<BackendPod> StartPod(const std::string& name, const std::string& ip = "127.0.0.1") {
  auto pod = std::make_unique<BackendPod>(BackendPodOptions{.name = name, .ip = ip, .port = 0});
  absl::Status status = pod->Start();
  EXPECT_TRUE(status.ok()) << status;
  return pod;
}

std::shared_ptr<grpc::Channel> Dial(const BackendPod& pod) {
  return grpc::CreateChannel(pod.address(), grpc::InsecureChannelCredentials());
}

HealthCheckResponse::ServingStatus Health(const std::shared_ptr<grpc::Channel>& channel) {
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, HealthCheckRequest(), &response);
  EXPECT_TRUE(status.ok()) << status.error_message();
  return response.status();
}

TEST(BackendPodTest, UnaryCallAnswersWithPodNameAndPayload) {
  auto pod = StartPod("greeter-abc-12345");
  auto stub = grpc::testing::TestService::NewStub(Dial(*pod));
  grpc::ClientContext context;
  grpc::testing::SimpleRequest request;
  request.set_response_size(17);
  grpc::testing::SimpleResponse response;
  grpc::Status status = stub->UnaryCall(&context, request, &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.hostname(), "greeter-abc-12345");
  EXPECT_EQ(response.server_id(), "greeter-abc-12345");
  EXPECT_EQ(response.payload().body().size(), 17u);
  EXPECT_EQ(pod->calls_served(), 1u);
  EXPECT_EQ(pod->connections_accepted(), 1u);

  grpc::ClientContext empty_context;
  grpc::testing::Empty empty;
  ASSERT_TRUE(stub->EmptyCall(&empty_context, empty, &empty).ok());
  EXPECT_EQ(pod->calls_served(), 2u);
  EXPECT_EQ(pod->connections_accepted(), 1u);  // same channel, same connection
}

TEST(BackendPodTest, BindsItsOwnLoopbackAddress) {
  auto pod = StartPod("pod-on-its-own-ip", "127.0.0.77");
  EXPECT_EQ(pod->ip(), "127.0.0.77");
  EXPECT_EQ(Health(Dial(*pod)), HealthCheckResponse::SERVING);
  // Nothing listens on the same port at another loopback address.
  auto other = grpc::CreateChannel("127.0.0.78:" + std::to_string(pod->port()),
                                   grpc::InsecureChannelCredentials());
  EXPECT_FALSE(
      other->WaitForConnected(std::chrono::system_clock::now() + std::chrono::milliseconds(300)));
}

TEST(BackendPodTest, EchoesRequestedStatus) {
  auto pod = StartPod("p");
  auto stub = grpc::testing::TestService::NewStub(Dial(*pod));
  grpc::ClientContext context;
  grpc::testing::SimpleRequest request;
  request.mutable_response_status()->set_code(static_cast<int>(grpc::StatusCode::ABORTED));
  request.mutable_response_status()->set_message("asked for it");
  grpc::testing::SimpleResponse response;
  grpc::Status status = stub->UnaryCall(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_EQ(status.error_message(), "asked for it");
}

TEST(BackendPodTest, StreamingCallsWork) {
  auto pod = StartPod("p");
  auto stub = grpc::testing::TestService::NewStub(Dial(*pod));
  {
    grpc::ClientContext context;
    grpc::testing::StreamingOutputCallRequest request;
    for (int size : {1, 2, 3}) request.add_response_parameters()->set_size(size);
    auto reader = stub->StreamingOutputCall(&context, request);
    grpc::testing::StreamingOutputCallResponse response;
    std::vector<size_t> sizes;
    while (reader->Read(&response)) sizes.push_back(response.payload().body().size());
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(sizes, (std::vector<size_t>{1, 2, 3}));
  }
  {
    grpc::ClientContext context;
    grpc::testing::StreamingInputCallResponse response;
    auto writer = stub->StreamingInputCall(&context, &response);
    grpc::testing::StreamingInputCallRequest request;
    request.mutable_payload()->set_body(std::string(10, 'x'));
    ASSERT_TRUE(writer->Write(request));
    ASSERT_TRUE(writer->Write(request));
    writer->WritesDone();
    ASSERT_TRUE(writer->Finish().ok());
    EXPECT_EQ(response.aggregated_payload_size(), 20);
  }
  for (bool half : {false, true}) {
    grpc::ClientContext context;
    auto stream = half ? stub->HalfDuplexCall(&context) : stub->FullDuplexCall(&context);
    grpc::testing::StreamingOutputCallRequest request;
    request.add_response_parameters()->set_size(5);
    ASSERT_TRUE(stream->Write(request));
    ASSERT_TRUE(stream->Write(request));
    stream->WritesDone();
    grpc::testing::StreamingOutputCallResponse response;
    int count = 0;
    while (stream->Read(&response)) ++count;
    ASSERT_TRUE(stream->Finish().ok());
    EXPECT_EQ(count, 2) << (half ? "half duplex" : "full duplex");
  }
  EXPECT_EQ(pod->calls_served(), 4u);
}

TEST(BackendPodTest, HealthFollowsLifecycleAndWatchSeesTheChange) {
  auto pod = StartPod("p");
  auto channel = Dial(*pod);
  EXPECT_EQ(Health(channel), HealthCheckResponse::SERVING);

  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext watch_context;
  auto watch = stub->Watch(&watch_context, HealthCheckRequest());
  HealthCheckResponse update;
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);

  pod->BeginTermination();
  ASSERT_TRUE(watch->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health(channel), HealthCheckResponse::NOT_SERVING);

  // Terminating pods still serve calls (endpoint serving=true, ready=false).
  auto test_stub = grpc::testing::TestService::NewStub(channel);
  grpc::ClientContext context;
  grpc::testing::SimpleResponse response;
  EXPECT_TRUE(test_stub->UnaryCall(&context, grpc::testing::SimpleRequest(), &response).ok());

  pod->Shutdown(std::chrono::seconds(1));
  EXPECT_FALSE(watch->Read(&update));  // the watch ends when the pod shuts down
  watch->Finish();
  EXPECT_FALSE(pod->running());
}

TEST(BackendPodTest, ShutdownLetsInFlightCallsFinish) {
  auto pod = StartPod("p");
  auto stub = grpc::testing::TestService::NewStub(Dial(*pod));
  grpc::ClientContext context;
  grpc::testing::StreamingOutputCallRequest request;
  // Three messages 100 ms apart: the call is in flight while Shutdown starts.
  for (int i = 0; i < 3; ++i) {
    auto* params = request.add_response_parameters();
    params->set_size(1);
    params->set_interval_us(100000);
  }
  auto reader = stub->StreamingOutputCall(&context, request);
  grpc::testing::StreamingOutputCallResponse response;
  ASSERT_TRUE(reader->Read(&response));
  std::thread stopper([&] { pod->Shutdown(std::chrono::seconds(5)); });
  int rest = 0;
  while (reader->Read(&response)) ++rest;
  grpc::Status status = reader->Finish();
  stopper.join();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(rest, 2);
}

TEST(BackendPodTest, SecondPodOnSameAddressFailsClearly) {
  auto pod = StartPod("first");
  BackendPod second(BackendPodOptions{.name = "second", .ip = "127.0.0.1", .port = pod->port()});
  absl::Status status = second.Start();
  EXPECT_FALSE(status.ok());
  EXPECT_NE(std::string(status.message()).find("cannot listen"), std::string::npos) << status;
}

TEST(GrpcPodRuntimeTest, ProbeSucceedsForRunningPodOnly) {
  GrpcPodRuntime runtime;
  int port = testing::PickFreePort();
  ASSERT_TRUE(
      runtime.StartPod({.name = "a", .ip = "127.0.0.1", .port = static_cast<uint16_t>(port)}).ok());
  EXPECT_TRUE(runtime.ProbeReadiness("a").ok());
  runtime.BeginTermination("a");
  EXPECT_FALSE(runtime.ProbeReadiness("a").ok());
  runtime.StopPod("a", std::chrono::milliseconds(100));
  EXPECT_FALSE(runtime.ProbeReadiness("a").ok());
}

TEST(PodIpAllocatorTest, HandsOutDistinctLoopbackAddresses) {
  PodIpAllocator ips("127.0.0.253");
  EXPECT_EQ(ips.Allocate(), "127.0.0.253");
  EXPECT_EQ(ips.Allocate(), "127.0.0.254");
  EXPECT_EQ(ips.Allocate(), "127.0.1.2");  // skips .255, .0 and .1
  ips.Release("127.0.0.253");
  EXPECT_EQ(ips.Allocate(), "127.0.1.3");  // no immediate reuse
}

}  // namespace
}  // namespace podlb::sandbox
