// The alternative design measured against LbChannel (a rebuilt channel): on every endpoint
// change, build a new grpc::Channel over a multi-address ipv4: target with the round_robin
// policy and swap it in, relying on gRPC's global subchannel pool to keep the connections of
// addresses that stay. Benchmark-only; calls from any thread, Update from one thread.
#pragma once

#include <grpcpp/create_channel.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "client/channel_access.h"

namespace podlb::bench {

class RebuiltChannel final : public grpc::ChannelInterface {
 public:
  // Builds the channel for `host_ports` and waits until it is READY before swapping it in (the
  // old one stays alive until then, so the shared subchannels are never released).
  void Update(const std::vector<std::string>& host_ports) {
    std::string target = "ipv4:";
    for (size_t i = 0; i < host_ports.size(); ++i) target += (i ? "," : "") + host_ports[i];
    grpc::ChannelArguments args;
    args.SetServiceConfigJSON(R"({"loadBalancingConfig":[{"round_robin":{}}]})");
    auto next = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    next->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(5));
    current_.store(std::move(next));
  }

  grpc_connectivity_state GetState(bool try_to_connect) override {
    return current_.load()->GetState(try_to_connect);
  }

 private:
  grpc::internal::Call CreateCall(const grpc::internal::RpcMethod& method,
                                  grpc::ClientContext* context,
                                  grpc::CompletionQueue* cq) override {
    std::shared_ptr<grpc::Channel> channel = current_.load(std::memory_order_acquire);
    return client::CreateCallOn(*channel, method, context, cq);
  }
  void PerformOpsOnCall(grpc::internal::CallOpSetInterface* ops,
                        grpc::internal::Call* call) override {
    call->PerformOps(ops);
  }
  void* RegisterMethod(const char*) override { return nullptr; }
  void NotifyOnStateChangeImpl(grpc_connectivity_state last_observed, gpr_timespec deadline,
                               grpc::CompletionQueue* cq, void* tag) override {
    client::NotifyOnStateChangeOn(*current_.load(), last_observed, deadline, cq, tag);
  }
  bool WaitForStateChangeImpl(grpc_connectivity_state last_observed,
                              gpr_timespec deadline) override {
    return client::WaitForStateChangeOn(*current_.load(), last_observed, deadline);
  }
  grpc::CompletionQueue* CallbackCQ() override { return client::CallbackCQOf(*current_.load()); }

  std::atomic<std::shared_ptr<grpc::Channel>> current_;
};

}  // namespace podlb::bench
