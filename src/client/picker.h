// EndpointChannel (one grpc::Channel per pod address, with its count of calls in flight) and
// Picker, the immutable per-update choice structure the data path reads without locks.
// Pickers are built on the update thread and then read concurrently by every calling thread.
#pragma once

#include <grpcpp/channel.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "podlb/podlb.h"

namespace podlb::client {

// Calls in flight on one endpoint; shared by the endpoint's interceptor factory and its
// EndpointChannel so it outlives whichever goes first.
struct CallCounter {
  std::atomic<int64_t> in_flight{0};
  std::atomic<uint64_t> started{0};
};

struct EndpointChannel {
  std::string host_port;  // "10.0.0.1:8080"
  std::shared_ptr<grpc::Channel> channel;
  std::shared_ptr<CallCounter> counter;
};
using EndpointChannelSharedPtr = std::shared_ptr<const EndpointChannel>;

// Creates the grpc::Channel for one endpoint: target ipv4:/ipv6: (no resolver), and, for
// power-of-two-choices, an interceptor that keeps `counter` current. Channels with equal
// arguments share gRPC's global subchannel pool, so re-creating one does not reconnect.
std::shared_ptr<grpc::Channel> MakeEndpointChannel(
    const std::string& host_port, bool ipv6, LbPolicy policy,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& args, const std::shared_ptr<CallCounter>& counter);

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
