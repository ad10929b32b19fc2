// LbChannel against real grpc++ servers (sandbox BackendPods) on 127.0.0.2…, fed through a
// Registry as discovery would: balance, scale-up, rolling replacement, draining, connection
// reuse, and the no-endpoint failure.
#include "client/lb_channel.h"

#include <algorithm>
#include <set>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/support/byte_buffer.h>

#include "absl/synchronization/notification.h"
#include "client_test_support.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/filler_endpoints.h"
#include "support/process.h"

namespace podlb {
namespace {

using ::testing::HasSubstr;
using testing::CallOnce;
using testing::EndpointOf;
using testing::StartPod;

const ServiceKey kKey{"default", "greeter", "grpc"};

class LbChannelTest : public ::testing::TestWithParam<LbPolicy> {
 protected:
  std::shared_ptr<client::LbChannel> MakeChannel() {
    return client::LbChannel::Create(registry_, kKey,
                                     {.defaults = client::LibraryDefaults(GetParam())});
  }
  void Publish(const std::vector<Endpoint>& endpoints) { registry_.Publish({kKey}, endpoints); }
  std::vector<Endpoint> EndpointsOf(const std::vector<std::unique_ptr<sandbox::BackendPod>>& pods) {
    std::vector<Endpoint> out;
    for (const auto& pod : pods) out.push_back(EndpointOf(*pod));
    return out;
  }

  Registry registry_;
};

TEST_P(LbChannelTest, SpreadsThreeHundredCallsEvenlyOverThreePods) {
  std::vector<std::unique_ptr<sandbox::BackendPod>> pods;
  for (int i = 0; i < 3; ++i) pods.push_back(StartPod("pod-" + std::to_string(i), 2 + i));
  Publish(EndpointsOf(pods));
  auto channel = MakeChannel();
  auto stub = grpc::testing::TestService::NewStub(channel);
  std::map<std::string, int> counts;
  for (int i = 0; i < 300; ++i) ++counts[CallOnce(*stub)];
  ASSERT_EQ(counts.size(), 3u) << "calls went to: " << ::testing::PrintToString(counts);
  int max = 0, min = 1 << 30;
  for (const auto& [pod, n] : counts) {
    max = std::max(max, n);
    min = std::min(min, n);
  }
  // Peak EWMA is meant to follow latency, which a loaded machine makes uneven (the proxy's
  // spread test under it failed 25 runs in 40 under load): for it, every pod taking calls is the
  // promise; its choices are tested with controlled latencies in tests/balancing.
  if (GetParam() == LbPolicy::kPeakEwma) return;
  EXPECT_LE(static_cast<double>(max) / min, 1.2) << ::testing::PrintToString(counts);
}

TEST_P(LbChannelTest, EveryNewPodTakesCallsWithinOneSecondOfAScaleUp) {
  std::vector<std::unique_ptr<sandbox::BackendPod>> pods;
  for (int i = 0; i < 6; ++i) pods.push_back(StartPod("pod-" + std::to_string(i), 2 + i));
  Publish({EndpointOf(*pods[0]), EndpointOf(*pods[1]), EndpointOf(*pods[2])});
  auto channel = MakeChannel();
  testing::Caller caller(channel, 4);
  ASSERT_TRUE(testing::WaitFor([&] { return caller.CountFor("pod-2") > 0; },
                               std::chrono::seconds(5), "the first pods to take calls"));
  Publish(EndpointsOf(pods));
  auto scaled = std::chrono::steady_clock::now();
  for (int i = 3; i < 6; ++i) {
    std::string name = pods[i]->name();
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        scaled + std::chrono::seconds(1) - std::chrono::steady_clock::now());
    EXPECT_TRUE(testing::WaitFor([&] { return caller.CountFor(name) > 0; },
                                 std::max(left, std::chrono::milliseconds(0)),
                                 name + " to take calls within 1 s of the scale-up"));
  }
  caller.Stop();
  EXPECT_THAT(caller.Errors(), ::testing::IsEmpty());
}

TEST_P(LbChannelTest, RollingReplacementFailsNoCallAndKeepsOtherConnections) {
  std::vector<std::unique_ptr<sandbox::BackendPod>> pods;
  for (int i = 0; i < 3; ++i) pods.push_back(StartPod("old-" + std::to_string(i), 2 + i));
  Publish(EndpointsOf(pods));
  auto channel = MakeChannel();
  testing::Caller caller(channel, 4);
  ASSERT_TRUE(testing::WaitFor(
      [&] { return caller.CountFor("old-0") && caller.CountFor("old-1") && caller.CountFor("old-2"); },
      std::chrono::seconds(5), "every pod to take calls"));

  // Replace each pod in turn the way a Deployment does: the new pod becomes ready, the old one
  // turns terminating (still serving), then leaves the endpoints and shuts down.
  for (int i = 0; i < 3; ++i) {
    std::vector<uint64_t> connections_before;
    for (int j = i + 1; j < 3; ++j) connections_before.push_back(pods[j]->connections_accepted());
    auto fresh = StartPod("new-" + std::to_string(i), 10 + i);
    std::vector<Endpoint> endpoints = EndpointsOf(pods);
    endpoints[i] = EndpointOf(*pods[i], /*terminating=*/true);
    endpoints.push_back(EndpointOf(*fresh));
    Publish(endpoints);
    std::string name = fresh->name();
    ASSERT_TRUE(testing::WaitFor([&] { return caller.CountFor(name) > 0; },
                                 std::chrono::seconds(1), name + " to take calls"));
    endpoints.erase(endpoints.begin() + i);
    Publish(endpoints);
    pods[i]->BeginTermination();
    pods[i]->Shutdown(std::chrono::seconds(2));
    pods[i] = std::move(fresh);
    for (int j = i + 1; j < 3; ++j) {
      EXPECT_EQ(pods[j]->connections_accepted(), connections_before[j - i - 1])
          << pods[j]->name() << " was reconnected to while " << i << " was replaced";
    }
  }
  ASSERT_TRUE(testing::WaitFor([&] { return caller.CountFor("new-2") > 10; },
                               std::chrono::seconds(5), "calls on the last new pod"));
  caller.Stop();
  EXPECT_THAT(caller.Errors(), ::testing::IsEmpty());
  for (const auto& pod : pods) EXPECT_EQ(pod->connections_accepted(), 1u) << pod->name();
}

TEST_P(LbChannelTest, DrainingPodTakesNoNewCalls) {
  auto a = StartPod("a", 2);
  auto b = StartPod("b", 3);
  Publish({EndpointOf(*a), EndpointOf(*b, /*terminating=*/true)});
  auto channel = MakeChannel();
  auto stub = grpc::testing::TestService::NewStub(channel);
  for (int i = 0; i < 50; ++i) ASSERT_EQ(CallOnce(*stub), "a");
  EXPECT_EQ(b->calls_served(), 0u);
}

TEST_P(LbChannelTest, RemovedPodFinishesItsCallInFlight) {
  auto a = StartPod("a", 2);
  Publish({EndpointOf(*a)});
  auto channel = MakeChannel();
  auto stub = grpc::testing::TestService::NewStub(channel);
  grpc::ClientContext context;
  auto stream = stub->FullDuplexCall(&context);
  grpc::testing::StreamingOutputCallRequest request;
  request.add_response_parameters()->set_size(10);
  grpc::testing::StreamingOutputCallResponse response;
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));

  Publish({});  // the pod leaves; its channel is dropped by the picker but the call goes on
  EXPECT_EQ(channel->Stats().channels, 0u);
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  stream->WritesDone();
  grpc::Status status = stream->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
}

TEST_P(LbChannelTest, NoEndpointsFailsFastWithUnavailableNamingTheService) {
  auto channel = MakeChannel();  // nothing published yet
  auto stub = grpc::testing::TestService::NewStub(channel);
  for (int round = 0; round < 2; ++round) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    auto start = std::chrono::steady_clock::now();
    grpc::Status status = stub->UnaryCall(&context, request, &response);
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
    EXPECT_THAT(status.error_message(), HasSubstr("default/greeter:grpc"));
    Publish({});  // second round: an empty set published
  }
  EXPECT_EQ(channel->GetState(true), GRPC_CHANNEL_TRANSIENT_FAILURE);
}

TEST_P(LbChannelTest, PodsThatStayKeepTheirChannelsAcrossUpdates) {
  auto a = StartPod("a", 2);
  auto b = StartPod("b", 3);
  Publish({EndpointOf(*a)});
  auto channel = MakeChannel();
  auto stub = grpc::testing::TestService::NewStub(channel);
  ASSERT_EQ(CallOnce(*stub), "a");
  Publish({EndpointOf(*a), EndpointOf(*b)});
  Publish({EndpointOf(*a), EndpointOf(*b, /*terminating=*/true)});
  Publish({EndpointOf(*a), EndpointOf(*b)});
  for (int i = 0; i < 10; ++i) EXPECT_NE(CallOnce(*stub).rfind("error", 0), 0u);
  EXPECT_EQ(channel->Stats().channels_created, 2u);
  EXPECT_EQ(a->connections_accepted(), 1u);
  EXPECT_EQ(b->connections_accepted(), 1u);
}

TEST_P(LbChannelTest, AsyncAndCallbackApisWork) {
  auto a = StartPod("a", 2);
  Publish({EndpointOf(*a)});
  auto channel = MakeChannel();
  auto stub = grpc::testing::TestService::NewStub(channel);
  {  // completion-queue async API
    grpc::CompletionQueue cq;
    grpc::ClientContext context;
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    grpc::Status status;
    auto rpc = stub->AsyncUnaryCall(&context, request, &cq);
    rpc->Finish(&response, &status, reinterpret_cast<void*>(1));
    void* tag;
    bool ok;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    EXPECT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.hostname(), "a");
  }
  {  // callback API
    grpc::ClientContext context;
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    absl::Notification done;
    grpc::Status result;
    stub->async()->UnaryCall(&context, &request, &response, [&](grpc::Status status) {
      result = status;
      done.Notify();
    });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_TRUE(result.ok()) << result.error_message();
    EXPECT_EQ(response.hostname(), "a");
  }
}

// Generated stubs register their methods (the fast path); a GenericStub names the method per
// call. Both must reach every pod, and many stubs on one channel register each method once.
TEST_P(LbChannelTest, RegisteredAndUnregisteredMethodsBothBalance) {
  std::vector<std::unique_ptr<sandbox::BackendPod>> pods;
  for (int i = 0; i < 3; ++i) pods.push_back(StartPod("pod-" + std::to_string(i), 2 + i));
  Publish(EndpointsOf(pods));
  auto channel = MakeChannel();
  std::map<std::string, int> registered, generic;
  for (int i = 0; i < 30; ++i) {
    // A new stub per call: re-registration must hand back the same method.
    ++registered[CallOnce(*grpc::testing::TestService::NewStub(channel))];
  }
  grpc::GenericStub generic_stub(channel);
  for (int i = 0; i < 30; ++i) {
    grpc::ClientContext context;
    grpc::testing::SimpleRequest request;
    grpc::ByteBuffer request_bytes, response_bytes;
    bool own_buffer = false;
    using RequestCodec = grpc::SerializationTraits<grpc::testing::SimpleRequest>;
    ASSERT_TRUE(RequestCodec::Serialize(request, &request_bytes, &own_buffer).ok());
    absl::Notification done;
    grpc::Status status;
    generic_stub.UnaryCall(&context, "/grpc.testing.TestService/UnaryCall", {}, &request_bytes,
                           &response_bytes, [&](grpc::Status s) {
                             status = s;
                             done.Notify();
                           });
    ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    ASSERT_TRUE(status.ok()) << status.error_message();
    grpc::testing::SimpleResponse response;
    using ResponseCodec = grpc::SerializationTraits<grpc::testing::SimpleResponse>;
    ASSERT_TRUE(ResponseCodec::Deserialize(&response_bytes, &response).ok());
    ++generic[response.hostname()];
  }
  EXPECT_EQ(registered.size(), 3u) << ::testing::PrintToString(registered);
  EXPECT_EQ(generic.size(), 3u) << ::testing::PrintToString(generic);
}

// Issue #12: a slice change in a 5,000-endpoint Service keeps the channel (and the connection) of
// every pod that stayed. Besides two serving pods, 4,998 endpoints are draining (a Service
// mid-rollout; their channels are made but never picked, and nothing listens there); then 100
// of them are replaced: exactly 100 channels are made, and the serving pods are never
// reconnected.
TEST(LbChannelLargeServiceTest, SliceChangeAtFiveThousandEndpointsKeepsEveryChannelThatStays) {
  Registry registry;
  auto a = StartPod("a", 2);
  auto b = StartPod("b", 3);
  auto endpoints_with = [&](int first_other) {
    std::vector<Endpoint> endpoints = {EndpointOf(*a), EndpointOf(*b)};
    for (Endpoint& e : testing::DrainingFillerEndpoints(first_other, 4998)) {
      endpoints.push_back(std::move(e));
    }
    return endpoints;
  };
  registry.Publish({kKey}, endpoints_with(0));
  auto channel = client::LbChannel::Create(
      registry, kKey, {.defaults = client::LibraryDefaults(LbPolicy::kRoundRobin)});
  EXPECT_EQ(channel->Stats().channels_created, 5000u);
  auto stub = grpc::testing::TestService::NewStub(channel);
  std::set<std::string> answered;
  for (int i = 0; i < 10; ++i) answered.insert(CallOnce(*stub));
  EXPECT_EQ(answered, (std::set<std::string>{"a", "b"}));

  registry.Publish({kKey}, endpoints_with(100));
  EXPECT_EQ(channel->Stats().channels_created, 5100u);
  answered.clear();
  for (int i = 0; i < 10; ++i) answered.insert(CallOnce(*stub));
  EXPECT_EQ(answered, (std::set<std::string>{"a", "b"}));
  EXPECT_EQ(a->connections_accepted(), 1u);
  EXPECT_EQ(b->connections_accepted(), 1u);
}

TEST(LbChannelPowerOfTwoTest, SendsNewCallsToThePodWithFewerInFlight) {
  Registry registry;
  auto a = StartPod("a", 2);
  auto b = StartPod("b", 3);
  registry.Publish({kKey}, {EndpointOf(*a), EndpointOf(*b)});
  auto channel = client::LbChannel::Create(
      registry, kKey, {.defaults = client::LibraryDefaults(LbPolicy::kLeastRequest)});
  auto stub = grpc::testing::TestService::NewStub(channel);
  using Stream = grpc::ClientReaderWriter<grpc::testing::StreamingOutputCallRequest,
                                          grpc::testing::StreamingOutputCallResponse>;
  struct Held {
    std::unique_ptr<grpc::ClientContext> context = std::make_unique<grpc::ClientContext>();
    std::unique_ptr<Stream> stream;
  };
  std::vector<Held> held(6);
  for (auto& h : held) {
    h.stream = stub->FullDuplexCall(h.context.get());
    grpc::testing::StreamingOutputCallRequest request;
    request.add_response_parameters()->set_size(1);
    ASSERT_TRUE(h.stream->Write(request));
    grpc::testing::StreamingOutputCallResponse response;
    ASSERT_TRUE(h.stream->Read(&response));
  }
  // Concurrent streams split evenly; then end the ones on b, leaving a with 3 calls in flight.
  int on_a = 0;
  for (auto& h : held) {
    if (h.context->peer().find(a->ip() + ":") != std::string::npos) {
      ++on_a;
      continue;
    }
    h.stream->WritesDone();
    EXPECT_TRUE(h.stream->Finish().ok());
    h.stream.reset();
    h.context.reset();
  }
  EXPECT_EQ(on_a, 3);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(CallOnce(*stub), "b") << "call " << i;
  for (auto& h : held) {
    if (!h.stream) continue;
    h.stream->WritesDone();
    EXPECT_TRUE(h.stream->Finish().ok());
  }
}

INSTANTIATE_TEST_SUITE_P(Policies, LbChannelTest,
                         ::testing::Values(LbPolicy::kRoundRobin, LbPolicy::kLeastRequest,
                                           LbPolicy::kPeakEwma),
                         [](const auto& info) {
                           switch (info.param) {
                             case LbPolicy::kRoundRobin: return "RoundRobin";
                             case LbPolicy::kLeastRequest: return "LeastRequest";
                             default: return "PeakEwma";
                           }
                         });

}  // namespace
}  // namespace podlb
