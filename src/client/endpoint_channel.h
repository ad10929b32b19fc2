// EndpointChannel: one grpc::Channel per pod address, with its registered methods and, when the
// Service's policy needs call results (peak_ewma's latency, outlier ejection's statuses), a
// grpc++ interceptor that reports each call's end to the balancing core. One per pod per
// LbChannel, attached to the pod's entry in the Balancer's table; read concurrently by every
// calling thread.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/impl/rpc_method.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "balancing/balancer.h"
#include "balancing/call_metrics.h"

namespace podlb::client {

// Methods registered on an LbChannel (one per generated stub method), numbered in registration
// order. The number indexes each EndpointChannel's table of its own registered methods.
struct RegisteredMethod {
  size_t index;
  std::string name;  // "/package.Service/Method"; outlives every EndpointChannel using it
};

// Upper bound on registered methods per LbChannel; methods past it take gRPC's unregistered
// path (still correct, a little slower). Generated stubs register every method of a service.
inline constexpr size_t kMaxRegisteredMethods = 128;

// What an endpoint channel reports each call to. Outlives the channel's calls (held by the
// interceptor factory, which the channel owns, which every call's ClientContext holds).
struct CallSink {
  std::shared_ptr<balancing::EndpointStats> stats;
  std::weak_ptr<balancing::Balancer> balancer;  // weak: the balancer owns this channel
  std::shared_ptr<balancing::CallMetrics> metrics;
};

// How much of each call a channel observes, from the cheapest up.
enum class CallTracking {
  kNone,      // round_robin without ejection
  kInFlight,  // least_request without ejection: a guard on the ClientContext, no interceptor
  kResults,   // peak_ewma or ejection: an interceptor sees each call's latency and status
};
CallTracking TrackingFor(const balancing::ServicePolicy& policy);

class EndpointChannel {
 public:
  // `ipv6` picks the ipv6: target scheme. `methods_owner` keeps the RegisteredMethod names this
  // channel's method table points into alive.
  EndpointChannel(std::string host_port, bool ipv6,
                  const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                  const grpc::ChannelArguments& args, std::shared_ptr<const void> methods_owner,
                  CallTracking tracking, CallSink sink);
  ~EndpointChannel();
  EndpointChannel(const EndpointChannel&) = delete;
  EndpointChannel& operator=(const EndpointChannel&) = delete;

  const std::string& host_port() const { return host_port_; }
  grpc::Channel& channel() const { return *channel_; }
  const std::shared_ptr<grpc::Channel>& shared_channel() const { return channel_; }
  CallTracking tracking() const { return tracking_; }
  const std::shared_ptr<balancing::EndpointStats>& stats() const { return stats_; }

  // The method as registered on this endpoint's channel (so gRPC skips the per-call method
  // lookup), built on first use. `method` is the caller's RpcMethod, for its type and stats
  // suffix. Thread-safe and lock-free after the first call per method.
  const grpc::internal::RpcMethod& Registered(const RegisteredMethod& registered,
                                              const grpc::internal::RpcMethod& method) const;

 private:
  const std::string host_port_;
  const CallTracking tracking_;
  const std::shared_ptr<balancing::EndpointStats> stats_;
  const std::shared_ptr<grpc::Channel> channel_;
  const std::shared_ptr<const void> methods_owner_;
  mutable std::array<std::atomic<grpc::internal::RpcMethod*>, kMaxRegisteredMethods> methods_{};
};
using EndpointChannelSharedPtr = std::shared_ptr<const EndpointChannel>;

}  // namespace podlb::client
