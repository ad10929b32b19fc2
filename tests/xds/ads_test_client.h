// A scripted ADS client for integration tests: one StreamAggregatedResources call on the
// generated stub over a channel of the test's choosing (plaintext, TLS, mTLS), with blocking
// Subscribe/Read. Each channel has its own subchannel pool, so every AdsTestClient opens its own
// connection (a fresh TLS handshake). Header-only; one thread per client.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace podlb::testing {

class AdsTestClient {
 public:
  using DiscoveryRequest = envoy::service::discovery::v3::DiscoveryRequest;
  using DiscoveryResponse = envoy::service::discovery::v3::DiscoveryResponse;

  AdsTestClient(const std::string& target, std::shared_ptr<grpc::ChannelCredentials> credentials,
                std::string node_id = "ads-test-client",
                std::chrono::seconds deadline = std::chrono::seconds(20))
      : node_id_(std::move(node_id)) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    channel_ = grpc::CreateCustomChannel(target, credentials, args);
    stub_ = envoy::service::discovery::v3::AggregatedDiscoveryService::NewStub(channel_);
    context_.set_deadline(std::chrono::system_clock::now() + deadline);
    stream_ = stub_->StreamAggregatedResources(&context_);
  }
  ~AdsTestClient() {
    if (!finished_) {
      context_.TryCancel();
      stream_->Finish();
    }
  }

  // Sends a request (the first one carries the node). False once the stream is broken.
  bool Subscribe(std::string_view type_url, const std::vector<std::string>& names,
                 const std::string& version = "", const std::string& nonce = "") {
    DiscoveryRequest request;
    if (first_) {
      request.mutable_node()->set_id(node_id_);
      request.mutable_node()->set_user_agent_name("podlb AdsTestClient");
      request.mutable_node()->mutable_locality()->set_zone("z1");
      first_ = false;
    }
    request.set_type_url(std::string(type_url));
    for (const auto& name : names) request.add_resource_names(name);
    request.set_version_info(version);
    request.set_response_nonce(nonce);
    return stream_->Write(request);
  }

  // The next response, or nullopt when the stream ended (see Finish for why).
  std::optional<DiscoveryResponse> Read() {
    DiscoveryResponse response;
    if (!stream_->Read(&response)) return std::nullopt;
    latest_[response.type_url()] = response;
    return response;
  }

  // ACKs `response` for `names`.
  bool Ack(const DiscoveryResponse& response, const std::vector<std::string>& names) {
    return Subscribe(response.type_url(), names, response.version_info(), response.nonce());
  }

  // The status the stream ended with; call after Read returned nullopt.
  grpc::Status Finish() {
    finished_ = true;
    return stream_->Finish();
  }

  // The last response read per type URL.
  const std::map<std::string, DiscoveryResponse>& latest() const { return latest_; }

 private:
  std::string node_id_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<envoy::service::discovery::v3::AggregatedDiscoveryService::Stub> stub_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReaderWriter<DiscoveryRequest, DiscoveryResponse>> stream_;
  bool first_ = true;
  bool finished_ = false;
  std::map<std::string, DiscoveryResponse> latest_;
};

}  // namespace podlb::testing
