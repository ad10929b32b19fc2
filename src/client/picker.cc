#include "client/picker.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/support/client_interceptor.h>

#include <chrono>
#include <random>
#include <thread>

namespace podlb::client {
namespace {

// Counts one call in flight from creation until its status arrives (or the call is destroyed
// without one, e.g. it failed to start).
class InFlightInterceptor : public grpc::experimental::Interceptor {
 public:
  explicit InFlightInterceptor(CallCounter* counter) : counter_(counter) {
    counter_->in_flight.fetch_add(1, std::memory_order_relaxed);
    counter_->started.fetch_add(1, std::memory_order_relaxed);
  }
  ~InFlightInterceptor() override { Finish(); }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_STATUS)) {
      Finish();
    }
    methods->Proceed();
  }

 private:
  void Finish() {
    if (!finished_) {
      finished_ = true;
      counter_->in_flight.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  // Safe as a raw pointer: the factory owning the counter lives in the grpc::Channel, which the
  // ClientContext keeps alive until after it destroys its interceptors.
  CallCounter* counter_;
  bool finished_ = false;
};

class InFlightInterceptorFactory : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit InFlightInterceptorFactory(std::shared_ptr<CallCounter> counter)
      : counter_(std::move(counter)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new InFlightInterceptor(counter_.get());
  }

 private:
  std::shared_ptr<CallCounter> counter_;
};

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
  return e.channel->GetState(false) == GRPC_CHANNEL_TRANSIENT_FAILURE;
}

}  // namespace

std::shared_ptr<grpc::Channel> MakeEndpointChannel(
    const std::string& host_port, bool ipv6, LbPolicy policy,
    const std::shared_ptr<grpc::ChannelCredentials>& credentials,
    const grpc::ChannelArguments& args, const std::shared_ptr<CallCounter>& counter) {
  std::string target = (ipv6 ? "ipv6:" : "ipv4:") + host_port;
  auto creds = credentials ? credentials : grpc::InsecureChannelCredentials();
  if (policy == LbPolicy::kRoundRobin) return grpc::CreateCustomChannel(target, creds, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<InFlightInterceptorFactory>(counter));
  return grpc::experimental::CreateCustomChannelWithInterceptors(target, creds, args,
                                                                 std::move(factories));
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
  if (second->counter->in_flight.load(std::memory_order_relaxed) <
      first->counter->in_flight.load(std::memory_order_relaxed)) {
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
