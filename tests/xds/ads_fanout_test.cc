// What the ADS server spends per change, seen from scripted clients of an in-process XdsServer:
// a change reaches only the streams that watch its Service, each resource is encoded once per
// version however many streams take it, an EDS push carries only the endpoint sets that
// changed (with a version naming everything the client then holds), and bytes that are not a
// DiscoveryRequest close the stream with a precise error.
#include <chrono>
#include <thread>

#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/impl/codegen/client_unary_call.h"
#include "grpcpp/impl/codegen/sync_stream.h"
#include "gtest/gtest.h"
#include "xds/type_urls.h"
#include "xds/xds_server.h"

namespace podlb::xds {
namespace {

using envoy::service::discovery::v3::AggregatedDiscoveryService;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

Endpoint Ep(const std::string& address) {
  Endpoint e;
  e.address = address;
  e.port = 50051;
  e.ready = e.serving = true;
  return e;
}

// One scripted ADS stream.
class Client {
 public:
  explicit Client(AggregatedDiscoveryService::Stub* stub) {
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    stream_ = stub->StreamAggregatedResources(&context_);
  }
  ~Client() {
    context_.TryCancel();
    DiscoveryResponse ignored;
    while (stream_->Read(&ignored)) {
    }
    stream_->Finish().IgnoreError();
  }
  void Subscribe(const std::vector<std::string>& names, const DiscoveryResponse* ack = nullptr) {
    DiscoveryRequest r;
    r.set_type_url(std::string(kClusterLoadAssignmentType));
    for (const auto& n : names) r.add_resource_names(n);
    if (ack) {
      r.set_version_info(ack->version_info());
      r.set_response_nonce(ack->nonce());
    }
    ASSERT_TRUE(stream_->Write(r));
  }
  DiscoveryResponse Read() {
    DiscoveryResponse response;
    EXPECT_TRUE(stream_->Read(&response));
    return response;
  }

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<DiscoveryRequest, DiscoveryResponse>> stream_;
};

std::vector<std::string> ClusterNames(const DiscoveryResponse& r) {
  std::vector<std::string> out;
  for (const auto& any : r.resources()) {
    envoy::config::endpoint::v3::ClusterLoadAssignment cla;
    EXPECT_TRUE(any.UnpackTo(&cla));
    out.push_back(cla.cluster_name());
  }
  return out;
}

class AdsFanoutTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Publish("a", {Ep("10.0.0.1")});
    Publish("b", {Ep("10.0.1.1")});
    server_ = std::make_unique<XdsServer>(
        registry_, XdsServerOptions{.listen = "127.0.0.1:0", .tls = {}, .ads = {}});
    ASSERT_TRUE(server_->Start().ok());
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = AggregatedDiscoveryService::NewStub(channel_);
    // The start-up batch (a and b, from the Registry's initial callback) is behind us.
    ASSERT_TRUE(WaitForBatches(1));
  }
  void TearDown() override { server_->Stop(); }

  void Publish(const std::string& name, std::vector<Endpoint> endpoints) {
    registry_.Publish({{"default", name, "50051"}}, std::move(endpoints));
  }
  const XdsMetrics& metrics() { return server_->service().metrics(); }
  // The push thread counts a batch after its last stream: wait for that count.
  [[nodiscard]] ::testing::AssertionResult WaitForBatches(uint64_t n) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (metrics().fanout_batches_total.load() < n) {
      if (std::chrono::steady_clock::now() > deadline) {
        return ::testing::AssertionFailure() << "fan-out batches stayed at "
                                             << metrics().fanout_batches_total.load();
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return ::testing::AssertionSuccess();
  }
  uint64_t EdsEncodes() {
    return metrics().encodes_total[static_cast<size_t>(ResourceType::kClusterLoadAssignment)].load();
  }

  Registry registry_;
  std::unique_ptr<XdsServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<AggregatedDiscoveryService::Stub> stub_;
};

TEST_F(AdsFanoutTest, OneEncodePerVersionForFiftyStreamsAndOnlyWatchersAreReached) {
  constexpr int kStreams = 50;
  std::vector<std::unique_ptr<Client>> on_a;
  for (int i = 0; i < kStreams; ++i) {
    on_a.push_back(std::make_unique<Client>(stub_.get()));
    on_a.back()->Subscribe({"default/a:50051"});
    on_a.back()->Read();
  }
  Client on_b(stub_.get());
  on_b.Subscribe({"default/b:50051"});
  on_b.Read();
  EXPECT_EQ(EdsEncodes(), 2u);  // a and b, once each, for 51 streams

  uint64_t batches = metrics().fanout_batches_total.load();
  uint64_t reached = metrics().fanout_streams_total.load();
  Publish("b", {Ep("10.0.1.2")});
  on_b.Read();
  ASSERT_TRUE(WaitForBatches(batches + 1));
  // The change to b visited b's one watcher, not the 50 streams on a.
  EXPECT_EQ(metrics().fanout_streams_total.load() - reached, 1u);

  reached = metrics().fanout_streams_total.load();
  Publish("a", {Ep("10.0.0.2")});
  for (auto& c : on_a) {
    DiscoveryResponse r = c->Read();
    EXPECT_EQ(ClusterNames(r), std::vector<std::string>{"default/a:50051"});
  }
  ASSERT_TRUE(WaitForBatches(batches + 2));
  EXPECT_EQ(metrics().fanout_streams_total.load() - reached, static_cast<uint64_t>(kStreams));
  EXPECT_EQ(EdsEncodes(), 4u);  // one more per changed Service, not per stream
}

TEST_F(AdsFanoutTest, EdsPushCarriesOnlyTheChangedSetAndVersionsWhatTheClientHolds) {
  Client client(stub_.get());
  client.Subscribe({"default/a:50051", "default/b:50051"});
  DiscoveryResponse first = client.Read();
  EXPECT_EQ(ClusterNames(first), (std::vector<std::string>{"default/a:50051", "default/b:50051"}));
  client.Subscribe({"default/a:50051", "default/b:50051"}, &first);

  Publish("b", {Ep("10.0.1.1"), Ep("10.0.1.2")});
  DiscoveryResponse pushed = client.Read();
  EXPECT_EQ(ClusterNames(pushed), std::vector<std::string>{"default/b:50051"});
  EXPECT_NE(pushed.version_info(), first.version_info());

  // A new client asking for both now gets both, under the version the first client holds:
  // the version names the whole state, not the last response's part of it.
  Client fresh(stub_.get());
  fresh.Subscribe({"default/a:50051", "default/b:50051"});
  DiscoveryResponse both = fresh.Read();
  EXPECT_EQ(both.resources_size(), 2);
  EXPECT_EQ(both.version_info(), pushed.version_info());
}

TEST_F(AdsFanoutTest, BytesThatAreNotADiscoveryRequestCloseTheStreamWithInvalidArgument) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  const grpc::internal::RpcMethod method(
      "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources",
      grpc::internal::RpcMethod::BIDI_STREAMING, channel_);
  std::unique_ptr<grpc::ClientReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>> raw(
      grpc::internal::ClientReaderWriterFactory<grpc::ByteBuffer, grpc::ByteBuffer>::Create(
          channel_.get(), method, &context));
  // Field 1 (node) declared 100 bytes long, 2 present: a truncated message.
  const char garbage[] = {0x0a, 0x64, 0x01, 0x02};
  grpc::Slice slice(garbage, sizeof garbage);
  ASSERT_TRUE(raw->Write(grpc::ByteBuffer(&slice, 1)));
  grpc::ByteBuffer response;
  EXPECT_FALSE(raw->Read(&response));
  grpc::Status status = raw->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(), "podlb: the request is not a valid DiscoveryRequest");

  // The server goes on serving other streams.
  Client client(stub_.get());
  client.Subscribe({"default/a:50051"});
  EXPECT_EQ(ClusterNames(client.Read()), std::vector<std::string>{"default/a:50051"});
}

}  // namespace
}  // namespace podlb::xds
