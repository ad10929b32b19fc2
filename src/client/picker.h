// EndpointChannel (one grpc::Channel per pod address, with its count of calls in flight and its
// registered methods) and Picker, the immutable per-update choice structure the data path reads
// without locks. Pickers are built on the update thread and then read concurrently by every
// calling thread.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/impl/rpc_method.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "podlb/podlb.h"

namespace podlb::client {

// Calls in flight on one endpoint. Shared by the EndpointChannel and every call's in-flight
// guard, so it outlives whichever goes first.
struct CallCounter {
  std::atomic<int64_t> in_flight{0};
};

// Methods registered on an LbChannel (one per generated stub method), numbered in registration
// order. The number indexes each EndpointChannel's table of its own registered methods.
struct RegisteredMethod {
  size_t index;
  std::string name;  // "/package.Service/Method"; outlives every EndpointChannel using it
};

// Upper bound on registered methods per LbChannel; methods past it take gRPC's unregistered
// path (still correct, a little slower). Generated stubs register every method of a service.
inline constexpr size_t kMaxRegisteredMethods = 128;

class EndpointChannel {
 public:
  // `ipv6` picks the ipv6: target scheme. `methods_owner` keeps the RegisteredMethod names this
  // channel's method table points into alive.
  EndpointChannel(std::string host_port, bool ipv6,
                  const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                  const grpc::ChannelArguments& args, std::shared_ptr<const void> methods_owner);
  ~EndpointChannel();
  EndpointChannel(const EndpointChannel&) = delete;
  EndpointChannel& operator=(const EndpointChannel&) = delete;

  const std::string& host_port() const { return host_port_; }
  grpc::Channel& channel() const { return *channel_; }
  const std::shared_ptr<grpc::Channel>& shared_channel() const { return channel_; }
  const std::shared_ptr<CallCounter>& counter() const { return counter_; }

  // The method as registered on this endpoint's channel (so gRPC skips the per-call method
  // lookup), built on first use. `method` is the caller's RpcMethod, for its type and stats
  // suffix. Thread-safe and lock-free after the first call per method.
  const grpc::internal::RpcMethod& Registered(const RegisteredMethod& registered,
                                              const grpc::internal::RpcMethod& method) const;

 private:
  const std::string host_port_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::shared_ptr<CallCounter> counter_ = std::make_shared<CallCounter>();
  const std::shared_ptr<const void> methods_owner_;
  mutable std::array<std::atomic<grpc::internal::RpcMethod*>, kMaxRegisteredMethods> methods_{};
};
using EndpointChannelSharedPtr = std::shared_ptr<const EndpointChannel>;

class Picker {
 public:
  Picker(LbPolicy policy, std::vector<EndpointChannelSharedPtr> eligible);

  // An eligible endpoint, skipping ones whose channel is in TRANSIENT_FAILURE while another is
  // usable. nullptr when there are none. Thread-safe, lock-free.
  const EndpointChannel* Pick() const;
  bool empty() const { return eligible_.empty(); }
  const std::vector<EndpointChannelSharedPtr>& eligible() const { return eligible_; }

 private:
  const EndpointChannel* PickRoundRobin() const;
  const EndpointChannel* PickTwoChoices() const;

  const LbPolicy policy_;
  const std::vector<EndpointChannelSharedPtr> eligible_;
  // Round-robin cursor; relaxed atomics are enough, the order need not be exact.
  mutable std::atomic<uint64_t> next_{0};
};

}  // namespace podlb::client
