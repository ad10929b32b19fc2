// The ADS protocol as a scripted client sees it: per-type versions and nonces, absent
// resources, ACK/NACK, pushes on Registry changes, unsubscribe and resubscribe, name forms,
// and the unimplemented delta stream. In-process XdsServer on 127.0.0.1, raw generated stub.
#include <set>
#include <thread>

#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
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
  e.zone = "z1";
  return e;
}

class AdsProtocolTest : public ::testing::Test {
 protected:
  void SetUp() override {
    registry_.Publish({{"default", "greeter", "grpc"}, {"default", "greeter", "50051"}},
                      {Ep("10.0.0.1"), Ep("10.0.0.2")});
    server_ = std::make_unique<XdsServer>(
        registry_, XdsServerOptions{.listen = "127.0.0.1:0", .tls = {}, .ads = {}});
    ASSERT_TRUE(server_->Start().ok());
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
    stub_ = AggregatedDiscoveryService::NewStub(channel_);
    context_.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    stream_ = stub_->StreamAggregatedResources(&context_);
  }
  void TearDown() override {
    context_.TryCancel();
    stream_.reset();
    server_->Stop();
  }

  void Send(std::string_view type, std::vector<std::string> names, const std::string& version = "",
            const std::string& nonce = "", const std::string& error = "") {
    DiscoveryRequest request;
    if (first_) {
      request.mutable_node()->set_id("scripted");
      request.mutable_node()->set_user_agent_name("gRPC C-core test");
      request.mutable_node()->mutable_locality()->set_zone(zone_);
      first_ = false;
    }
    request.set_type_url(std::string(type));
    for (auto& n : names) request.add_resource_names(n);
    request.set_version_info(version);
    request.set_response_nonce(nonce);
    if (!error.empty()) request.mutable_error_detail()->set_message(error);
    ASSERT_TRUE(stream_->Write(request));
  }
  DiscoveryResponse Read() {
    DiscoveryResponse response;
    EXPECT_TRUE(stream_->Read(&response));
    return response;
  }
  void Ack(const DiscoveryResponse& r, std::vector<std::string> names) {
    Send(r.type_url(), std::move(names), r.version_info(), r.nonce());
  }

  Registry registry_;
  std::unique_ptr<XdsServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<AggregatedDiscoveryService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<DiscoveryRequest, DiscoveryResponse>> stream_;
  bool first_ = true;
  std::string zone_;
};

TEST_F(AdsProtocolTest, ListenerAbsenceIsAnsweredAndNameFormsResolve) {
  Send(kListenerType, {"greeter.default:50051", "missing.default:50051"});
  DiscoveryResponse r = Read();
  EXPECT_EQ(r.type_url(), kListenerType);
  ASSERT_EQ(r.resources_size(), 1);  // the missing one is left out: the client learns absence
  envoy::config::listener::v3::Listener listener;
  ASSERT_TRUE(r.resources(0).UnpackTo(&listener));
  EXPECT_EQ(listener.name(), "greeter.default:50051");
  Ack(r, {"greeter.default:50051", "missing.default:50051"});

  // Another form, a port name: answered at once, with a new version and nonce.
  Send(kListenerType, {"greeter.default:50051", "missing.default:50051",
                       "greeter.default.svc.cluster.local:grpc"},
       r.version_info(), r.nonce());
  DiscoveryResponse r2 = Read();
  EXPECT_EQ(r2.resources_size(), 2);
  EXPECT_NE(r2.nonce(), r.nonce());
  EXPECT_NE(r2.version_info(), r.version_info());
  // Both requests carried the last nonce without an error: each is an ACK.
  EXPECT_EQ(server_->service().metrics().acks_total.load(), 2u);
}

TEST_F(AdsProtocolTest, EndpointPushNackAndResubscribe) {
  const std::string cluster = "default/greeter:50051";
  Send(kClusterLoadAssignmentType, {cluster});
  DiscoveryResponse r = Read();
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  ASSERT_EQ(r.resources_size(), 1);
  ASSERT_TRUE(r.resources(0).UnpackTo(&cla));
  EXPECT_EQ(cla.endpoints(0).lb_endpoints_size(), 2);
  Ack(r, {cluster});

  // A Registry change is pushed.
  registry_.Publish({{"default", "greeter", "grpc"}, {"default", "greeter", "50051"}},
                    {Ep("10.0.0.1"), Ep("10.0.0.2"), Ep("10.0.0.3")});
  DiscoveryResponse pushed = Read();
  ASSERT_TRUE(pushed.resources(0).UnpackTo(&cla));
  EXPECT_EQ(cla.endpoints(0).lb_endpoints_size(), 3);

  // NACK it: counted, and the stream keeps working for the next change.
  Send(kClusterLoadAssignmentType, {cluster}, r.version_info(), pushed.nonce(), "bad endpoints");
  registry_.Publish({{"default", "greeter", "grpc"}, {"default", "greeter", "50051"}},
                    {Ep("10.0.0.4")});
  DiscoveryResponse after_nack = Read();
  ASSERT_TRUE(after_nack.resources(0).UnpackTo(&cla));
  EXPECT_EQ(cla.endpoints(0).lb_endpoints_size(), 1);
  EXPECT_EQ(server_->service().metrics().nacks_total.load(), 1u);
  Ack(after_nack, {cluster});

  // Idle channel: unsubscribe everything, later subscribe again: the current resource at once,
  // although its content did not change meanwhile.
  Send(kClusterLoadAssignmentType, {}, after_nack.version_info(), after_nack.nonce());
  Send(kClusterLoadAssignmentType, {cluster}, after_nack.version_info(), after_nack.nonce());
  DiscoveryResponse again = Read();
  ASSERT_EQ(again.resources_size(), 1);
  EXPECT_EQ(again.resources(0).value(), after_nack.resources(0).value());
}

TEST_F(AdsProtocolTest, ClusterAbsenceIsAnEmptyResponse) {
  Send(kClusterType, {"default/nothing:80"});
  DiscoveryResponse r = Read();
  EXPECT_EQ(r.type_url(), kClusterType);
  EXPECT_EQ(r.resources_size(), 0);
}

TEST_F(AdsProtocolTest, ZoneAwareServiceGivesTheClientsZonePriorityZero) {
  Endpoint far = Ep("10.0.1.1");
  far.zone = "z2";
  registry_.Publish({{"default", "zonal", "50051"}}, {Ep("10.0.0.1"), far},
                    {{"podlb.io/zone-aware", "true"}});
  zone_ = "z2";
  Send(kClusterLoadAssignmentType, {"default/zonal:50051"});
  DiscoveryResponse r = Read();
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  ASSERT_EQ(r.resources_size(), 1);
  ASSERT_TRUE(r.resources(0).UnpackTo(&cla));
  ASSERT_EQ(cla.endpoints_size(), 2);
  for (const auto& locality : cla.endpoints()) {
    EXPECT_EQ(locality.priority(), locality.locality().zone() == "z2" ? 0u : 1u);
  }
}

// The gauge of a /metrics page, as an operator reads it.
double Gauge(const std::string& text, const std::string& name) {
  size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

TEST_F(AdsProtocolTest, DeletedServiceIsWithdrawnAndLeavesTheCache) {
  const std::vector<ServiceKey> temp = {{"default", "temp", "grpc"}, {"default", "temp", "50051"}};
  registry_.Publish(temp, {Ep("10.0.0.9")});
  const std::vector<std::string> names = {"greeter.default:50051", "temp.default:50051"};
  Send(kListenerType, names);
  DiscoveryResponse r = Read();
  ASSERT_EQ(r.resources_size(), 2);
  Ack(r, names);
  EXPECT_EQ(Gauge(server_->service().PrometheusText(), "podlb_xds_cache_resources"), 2);
  EXPECT_EQ(Gauge(server_->service().PrometheusText(), "podlb_xds_cache_services"), 2);
  EXPECT_EQ(Gauge(server_->service().PrometheusText(), "podlb_xds_registry_keys"), 4);

  // The Service is deleted: the client is told (state of the world: the Listener is gone)...
  registry_.Remove(temp);
  DiscoveryResponse pushed = Read();
  ASSERT_EQ(pushed.resources_size(), 1);
  envoy::config::listener::v3::Listener listener;
  ASSERT_TRUE(pushed.resources(0).UnpackTo(&listener));
  EXPECT_EQ(listener.name(), "greeter.default:50051");
  // ...and nothing of it stays, though the client still names it.
  const std::string text = server_->service().PrometheusText();
  EXPECT_EQ(Gauge(text, "podlb_xds_cache_resources"), 1);
  EXPECT_EQ(Gauge(text, "podlb_xds_cache_services"), 1);
  EXPECT_EQ(Gauge(text, "podlb_xds_registry_keys"), 2);

  // Created again: pushed to the client that still subscribes.
  registry_.Publish(temp, {Ep("10.0.0.9")});
  Ack(pushed, names);
  EXPECT_EQ(Read().resources_size(), 2);
}

TEST_F(AdsProtocolTest, EndpointSetsLargerThanTheFlowControlWindowArriveWhole) {
  // 5,000 endpoints are ~150 KB, over twice gRPC's initial 64 KB stream window: the response
  // goes out as the client's WINDOW_UPDATEs allow, and the next change after it.
  const std::string cluster = "default/greeter:50051";
  auto many = [](int n, int port) {
    std::vector<Endpoint> endpoints;
    for (int i = 0; i < n; ++i) {
      Endpoint e = Ep("10." + std::to_string(i / 65536) + "." + std::to_string(i / 256 % 256) +
                      "." + std::to_string(i % 256));
      e.port = port;
      endpoints.push_back(e);
    }
    return endpoints;
  };
  registry_.Publish({{"default", "greeter", "grpc"}, {"default", "greeter", "50051"}},
                    many(5000, 50051));
  Send(kClusterLoadAssignmentType, {cluster});
  DiscoveryResponse r = Read();
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  ASSERT_EQ(r.resources_size(), 1);
  ASSERT_TRUE(r.resources(0).UnpackTo(&cla));
  EXPECT_EQ(cla.endpoints(0).lb_endpoints_size(), 5000);
  EXPECT_GT(r.ByteSizeLong(), 2u * 65535);
  Ack(r, {cluster});
  registry_.Publish({{"default", "greeter", "grpc"}, {"default", "greeter", "50051"}},
                    many(4999, 50052));
  DiscoveryResponse pushed = Read();
  ASSERT_TRUE(pushed.resources(0).UnpackTo(&cla));
  ASSERT_EQ(cla.endpoints(0).lb_endpoints_size(), 4999);
  EXPECT_EQ(cla.endpoints(0).lb_endpoints(4998).endpoint().address().socket_address().port_value(),
            50052u);
}

// The names of a response's resources, each unpacked as a T and named by `name_of`.
template <typename T, typename NameOf>
std::set<std::string> ResourceNames(const DiscoveryResponse& r, NameOf name_of) {
  std::set<std::string> names;
  for (const auto& resource : r.resources()) {
    T unpacked;
    EXPECT_TRUE(resource.UnpackTo(&unpacked));
    names.insert(name_of(unpacked));
  }
  return names;
}

// A wildcard CDS subscription (an empty first request, as Envoy sends) covers every Service,
// those created later too, and a deleted one leaves the next response.
TEST_F(AdsProtocolTest, WildcardClusterSubscriptionFollowsServicesComingAndGoing) {
  auto names_of = [](const DiscoveryResponse& r) {
    return ResourceNames<envoy::config::cluster::v3::Cluster>(
        r, [](const auto& cluster) { return cluster.name(); });
  };
  Send(kClusterType, {});
  DiscoveryResponse r = Read();
  EXPECT_EQ(names_of(r), (std::set<std::string>{"default/greeter:50051", "default/greeter:grpc"}));
  Ack(r, {});

  const std::vector<ServiceKey> later = {{"default", "later", "grpc"}};
  registry_.Publish(later, {Ep("10.0.0.7")});
  DiscoveryResponse added = Read();
  EXPECT_EQ(names_of(added), (std::set<std::string>{"default/greeter:50051",
                                                    "default/greeter:grpc", "default/later:grpc"}));
  EXPECT_NE(added.version_info(), r.version_info());
  Ack(added, {});

  registry_.Remove(later);
  DiscoveryResponse removed = Read();
  EXPECT_EQ(names_of(removed), names_of(r));
  // The version is the content's: the same clusters as at first, the same version.
  EXPECT_EQ(removed.version_info(), r.version_info());
}

// An ACK may list the names in another order, or twice: still the same subscription, so
// nothing is re-sent, and the next response is the next change.
TEST_F(AdsProtocolTest, AckWithNamesReorderedIsNotANewSubscription) {
  registry_.Publish({{"default", "other", "grpc"}}, {Ep("10.0.0.5")});
  const std::vector<std::string> names = {"default/other:grpc", "default/greeter:50051"};
  Send(kClusterLoadAssignmentType, names);
  DiscoveryResponse r = Read();
  ASSERT_EQ(r.resources_size(), 2);
  Ack(r, {"default/greeter:50051", "default/other:grpc", "default/greeter:50051"});
  registry_.Publish({{"default", "other", "grpc"}}, {Ep("10.0.0.6")});
  DiscoveryResponse pushed = Read();
  // Only the changed resource (EDS carries what changed), and it is the new one.
  ASSERT_EQ(pushed.resources_size(), 1);
  envoy::config::endpoint::v3::ClusterLoadAssignment cla;
  ASSERT_TRUE(pushed.resources(0).UnpackTo(&cla));
  EXPECT_EQ(cla.cluster_name(), "default/other:grpc");
  EXPECT_EQ(cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().address(),
            "10.0.0.6");
  EXPECT_EQ(server_->service().metrics().pushes_total.load(), 2u);
  Ack(pushed, names);

  // Dropping a name and adding it back re-sends it in full, though it did not change.
  Send(kClusterLoadAssignmentType, {"default/other:grpc"}, pushed.version_info(), pushed.nonce());
  Send(kClusterLoadAssignmentType, names, pushed.version_info(), pushed.nonce());
  DiscoveryResponse again = Read();
  EXPECT_TRUE(ResourceNames<envoy::config::endpoint::v3::ClusterLoadAssignment>(
                  again, [](const auto& assignment) { return assignment.cluster_name(); })
                  .count("default/greeter:50051"));
}

// /debug/config reports, per client, what it subscribed to and the resources it ACKed.
TEST_F(AdsProtocolTest, DebugViewShowsSubscriptionAndAckedResources) {
  const std::string cluster = "default/greeter:50051";
  Send(kClusterLoadAssignmentType, {cluster, "default/absent:80"});
  DiscoveryResponse r = Read();
  // Before the ACK, the client holds nothing by its own word.
  auto eds = [&] {
    nlohmann::json config = nlohmann::json::parse(server_->service().DebugConfigJson());
    EXPECT_EQ(config["clients"].size(), 1u);
    return config["clients"][0]["EDS"];
  };
  EXPECT_EQ(eds()["subscribed"], nlohmann::json({"default/absent:80", cluster}));
  EXPECT_EQ(eds()["sent_version"], r.version_info());
  EXPECT_EQ(eds()["acked_version"], "");
  EXPECT_TRUE(eds()["resources"].empty());
  Ack(r, {cluster, "default/absent:80"});
  // The ACK is handled on the server's loop: wait for it to be counted.
  for (int i = 0; i < 500 && server_->service().metrics().acks_total.load() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(eds()["acked_version"], r.version_info());
  EXPECT_TRUE(eds()["resources"].contains(cluster));
  EXPECT_EQ(eds()["resources"].size(), 1u);
}

TEST_F(AdsProtocolTest, DeltaIsUnimplemented) {
  grpc::ClientContext context;
  auto delta = stub_->DeltaAggregatedResources(&context);
  envoy::service::discovery::v3::DeltaDiscoveryResponse response;
  EXPECT_FALSE(delta->Read(&response));
  EXPECT_EQ(delta->Finish().error_code(), grpc::StatusCode::UNIMPLEMENTED);
}

}  // namespace
}  // namespace podlb::xds
