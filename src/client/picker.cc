#include "client/picker.h"

#include <grpcpp/create_channel.h>

#include <chrono>
#include <random>
#include <thread>

namespace podlb::client {
namespace {

uint64_t NextRandom() {
  // xorshift64*, one state per thread: no shared cache line, no lock.
  thread_local uint64_t state = [] {
    uint64_t seed = std::random_device{}();
    seed ^= static_cast<uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id()));
    return seed | 1;
  }();
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1DULL;
}

bool Failing(const EndpointChannel& e) {
  return e.channel().GetState(false) == GRPC_CHANNEL_TRANSIENT_FAILURE;
}

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& host_port, bool ipv6,
                                           const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                           const grpc::ChannelArguments& args) {
  // ipv4:/ipv6: targets skip the resolver; channels with equal arguments share gRPC's global
  // subchannel pool, so re-creating one does not reconnect.
  return grpc::CreateCustomChannel((ipv6 ? "ipv6:" : "ipv4:") + host_port,
                                   creds ? creds : grpc::InsecureChannelCredentials(), args);
}

}  // namespace

EndpointChannel::EndpointChannel(std::string host_port, bool ipv6,
                                 const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                                 const grpc::ChannelArguments& args,
                                 std::shared_ptr<const void> methods_owner)
    : host_port_(std::move(host_port)),
      channel_(MakeChannel(host_port_, ipv6, credentials, args)),
      methods_owner_(std::move(methods_owner)) {}

EndpointChannel::~EndpointChannel() {
  for (auto& method : methods_) delete method.load(std::memory_order_acquire);
}

const grpc::internal::RpcMethod& EndpointChannel::Registered(
    const RegisteredMethod& registered, const grpc::internal::RpcMethod& method) const {
  std::atomic<grpc::internal::RpcMethod*>& slot = methods_[registered.index];
  grpc::internal::RpcMethod* current = slot.load(std::memory_order_acquire);
  if (current != nullptr) return *current;
  // First call of this method on this endpoint: register it with the endpoint's channel. Two
  // threads may race here; one wins and the other frees its copy (registration is idempotent).
  auto* fresh = new grpc::internal::RpcMethod(registered.name.c_str(), method.suffix_for_stats(),
                                              method.method_type(), channel_);
  if (slot.compare_exchange_strong(current, fresh, std::memory_order_acq_rel)) return *fresh;
  delete fresh;
  return *current;
}

Picker::Picker(LbPolicy policy, std::vector<EndpointChannelSharedPtr> eligible)
    : policy_(policy), eligible_(std::move(eligible)) {}

const EndpointChannel* Picker::Pick() const {
  if (eligible_.empty()) return nullptr;
  if (eligible_.size() == 1) return eligible_[0].get();
  return policy_ == LbPolicy::kRoundRobin ? PickRoundRobin() : PickTwoChoices();
}

const EndpointChannel* Picker::PickRoundRobin() const {
  const size_t n = eligible_.size();
  const uint64_t start = next_.fetch_add(1, std::memory_order_relaxed);
  for (size_t i = 0; i < n; ++i) {
    const EndpointChannel* e = eligible_[(start + i) % n].get();
    if (!Failing(*e)) return e;
  }
  // Every endpoint is failing: let the call fail on one of them (fast, with gRPC's reason).
  return eligible_[start % n].get();
}

const EndpointChannel* Picker::PickTwoChoices() const {
  // The first candidate comes from the round-robin cursor and wins ties, so an unloaded client
  // spreads calls evenly (pure random pairs would not); the second is random, so a loaded
  // endpoint is avoided as soon as it has more calls in flight than a peer.
  const size_t n = eligible_.size();
  const size_t a = next_.fetch_add(1, std::memory_order_relaxed) % n;
  size_t b = NextRandom() % (n - 1);
  if (b >= a) ++b;  // distinct from a
  const EndpointChannel* first = eligible_[a].get();
  const EndpointChannel* second = eligible_[b].get();
  if (second->counter()->in_flight.load(std::memory_order_relaxed) <
      first->counter()->in_flight.load(std::memory_order_relaxed)) {
    std::swap(first, second);
  }
  if (!Failing(*first)) return first;
  if (!Failing(*second)) return second;
  // Both failing: look for any usable endpoint before giving up.
  for (size_t i = 1; i < n; ++i) {
    const EndpointChannel* e = eligible_[(a + i) % n].get();
    if (!Failing(*e)) return e;
  }
  return first;
}

}  // namespace podlb::client
