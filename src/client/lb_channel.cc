#include "client/lb_channel.h"

#include <arpa/inet.h>
#include <grpc/grpc.h>

#include <vector>

#include "client/channel_access.h"
#include "core/logging.h"

namespace podlb::client {
namespace {

std::shared_ptr<grpc::Channel> MakeLameChannel(const ServiceKey& key) {
  const std::string message = "podlb: no ready endpoints for service " + key.ToString() +
                              " (none discovered yet, or every pod is draining or not ready);"
                              " check the Service's pods and that discovery can reach them";
  // The lame channel is made through the C API, which needs the library initialised; the
  // grpc::Channel wrapper then holds its own reference.
  grpc_init();
  grpc_channel* lame = grpc_lame_client_channel_create(key.ToString().c_str(),
                                                       GRPC_STATUS_UNAVAILABLE, message.c_str());
  auto channel = grpc::CreateChannelInternal("", lame, {});
  grpc_shutdown();
  return channel;
}

bool IsIpv6(const std::string& address) {
  in6_addr buf;
  return inet_pton(AF_INET6, address.c_str(), &buf) == 1;
}

// Counts a call as in flight on `counter` until its ClientContext releases the endpoint's
// channel (when the context is destroyed): the context's reference is swapped for one that
// carries a guard. Cheaper than a grpc++ interceptor, which costs microseconds on every batch.
class InFlightGuard {
 public:
  InFlightGuard(std::shared_ptr<grpc::Channel> channel, std::shared_ptr<CallCounter> counter)
      : channel_(std::move(channel)), counter_(std::move(counter)) {
    counter_->in_flight.fetch_add(1, std::memory_order_relaxed);
  }
  ~InFlightGuard() { counter_->in_flight.fetch_sub(1, std::memory_order_relaxed); }
  InFlightGuard(const InFlightGuard&) = delete;
  InFlightGuard& operator=(const InFlightGuard&) = delete;

  grpc::Channel* channel() const { return channel_.get(); }

 private:
  const std::shared_ptr<grpc::Channel> channel_;
  const std::shared_ptr<CallCounter> counter_;
};

void TrackInFlight(grpc::ClientContext& context, const std::shared_ptr<CallCounter>& counter) {
  std::shared_ptr<grpc::Channel>& held = ChannelHeldBy(context);
  if (!held) return;  // the call was not created; nothing will run on it
  auto guard = std::make_shared<InFlightGuard>(std::move(held), counter);
  held = std::shared_ptr<grpc::Channel>(guard, guard->channel());
}

int Rank(grpc_connectivity_state state) {
  switch (state) {
    case GRPC_CHANNEL_READY:
      return 4;
    case GRPC_CHANNEL_CONNECTING:
      return 3;
    case GRPC_CHANNEL_IDLE:
      return 2;
    case GRPC_CHANNEL_TRANSIENT_FAILURE:
      return 1;
    default:
      return 0;
  }
}

}  // namespace

std::shared_ptr<LbChannel> LbChannel::Create(Registry& registry, const ServiceKey& key,
                                             LbChannelOptions options,
                                             std::shared_ptr<void> owned) {
  std::shared_ptr<LbChannel> channel(new LbChannel(key, std::move(options), std::move(owned)));
  // Subscribe last: the callback runs at once with the current set and needs a whole object.
  // A raw `this` is safe: the subscription dies in ~LbChannel before anything it touches.
  LbChannel* self = channel.get();
  channel->subscription_ = registry.Subscribe(
      key, [self](const ServiceKey&, const EndpointSetConstSharedPtr& set) { self->Update(set); });
  return channel;
}

LbChannel::LbChannel(const ServiceKey& key, LbChannelOptions options, std::shared_ptr<void> owned)
    : owned_(std::move(owned)),
      key_(key),
      options_(std::move(options)),
      lame_(MakeLameChannel(key)),
      picker_(std::make_shared<const Picker>(options_.policy,
                                             std::vector<EndpointChannelSharedPtr>{})) {}

LbChannel::~LbChannel() {
  subscription_.reset();  // no Update() may run past this point
}

void LbChannel::Update(const EndpointSetConstSharedPtr& set) {
  absl::MutexLock lock(&mu_);
  std::map<std::string, EndpointChannelSharedPtr> next;
  std::vector<EndpointChannelSharedPtr> eligible;
  size_t created = 0, draining = 0;
  if (set) {
    for (const Endpoint& endpoint : set->endpoints()) {
      const std::string host_port = endpoint.HostPort();
      auto it = channels_.find(host_port);
      EndpointChannelSharedPtr entry;
      if (it != channels_.end()) {
        entry = it->second;  // same pod address: keep its connection
      } else {
        entry = std::make_shared<const EndpointChannel>(host_port, IsIpv6(endpoint.address),
                                                        options_.credentials,
                                                        options_.channel_args, methods_);
        // Connect now, so the pod's first call does not pay for the handshake.
        entry->channel().GetState(true);
        ++created;
      }
      next.emplace(host_port, entry);
      switch (endpoint.Health()) {
        case EndpointHealth::kEligible:
          eligible.push_back(entry);
          break;
        case EndpointHealth::kDraining:
          ++draining;  // kept connected for its in-flight calls, takes no new ones
          break;
        case EndpointHealth::kExcluded:
          break;
      }
    }
  }
  const size_t removed = channels_.size() + created - next.size();
  // Removed endpoints' channels are released here; calls in flight on them hold their own
  // reference (ClientContext), so they finish and the connection closes after the last one.
  channels_ = std::move(next);
  ++updates_;
  channels_created_ += created;
  picker_.store(std::make_shared<const Picker>(options_.policy, std::move(eligible)),
                std::memory_order_release);
  LogInfo("podlb client: {} now has {} eligible endpoints, {} draining ({} new, {} removed)",
          key_.ToString(), picker_.load()->eligible().size(), draining, created, removed);
}

LbChannelStats LbChannel::Stats() const {
  absl::MutexLock lock(&mu_);
  return LbChannelStats{.eligible = picker_.load(std::memory_order_acquire)->eligible().size(),
                        .channels = channels_.size(),
                        .updates = updates_,
                        .channels_created = channels_created_};
}

grpc::internal::Call LbChannel::CreateCall(const grpc::internal::RpcMethod& method,
                                           grpc::ClientContext* context,
                                           grpc::CompletionQueue* cq) {
  // Holding the picker keeps the picked endpoint's channel alive until the call owns a
  // reference of its own (grpc::Channel::CreateCall stores one in the ClientContext).
  std::shared_ptr<const Picker> picker = picker_.load(std::memory_order_acquire);
  const EndpointChannel* endpoint = picker->Pick();
  const void* tag = method.channel_tag();  // a RegisteredMethod of ours, or null (generic stubs)
  if (endpoint == nullptr) {
    // The tag means nothing to the lame channel: fail the call by name.
    const grpc::internal::RpcMethod by_name(method.name(), method.suffix_for_stats(),
                                            method.method_type());
    return CreateCallOn(*lame_, by_name, context, cq);
  }
  const grpc::internal::RpcMethod& on_endpoint =
      tag ? endpoint->Registered(*static_cast<const RegisteredMethod*>(tag), method) : method;
  grpc::internal::Call call = CreateCallOn(endpoint->channel(), on_endpoint, context, cq);
  if (options_.policy == LbPolicy::kPowerOfTwoChoices) {
    TrackInFlight(*context, endpoint->counter());
  }
  return call;
}

void LbChannel::PerformOpsOnCall(grpc::internal::CallOpSetInterface* ops,
                                 grpc::internal::Call* call) {
  // Calls created above carry their endpoint channel as their hook; this hands the ops to it.
  call->PerformOps(ops);
}

void* LbChannel::RegisterMethod(const char* method) {
  // Stubs register each method once, at construction. gRPC's tag for a registered method
  // belongs to one grpc_channel and a call may go to any endpoint, so the tag handed out here is
  // our own: each EndpointChannel registers the method with its channel on first use.
  absl::MutexLock lock(&methods_->mu);
  if (auto it = methods_->by_name.find(method); it != methods_->by_name.end()) {
    return const_cast<RegisteredMethod*>(it->second);
  }
  if (methods_->methods.size() >= kMaxRegisteredMethods) return nullptr;  // unregistered path
  RegisteredMethod& added =
      methods_->methods.emplace_back(RegisteredMethod{methods_->methods.size(), method});
  methods_->by_name.emplace(added.name, &added);
  return &added;
}

std::shared_ptr<grpc::Channel> LbChannel::StateDelegate() {
  std::shared_ptr<const Picker> picker = picker_.load(std::memory_order_acquire);
  if (picker->empty()) return lame_;
  return picker->eligible()[0]->shared_channel();
}

grpc_connectivity_state LbChannel::GetState(bool try_to_connect) {
  std::shared_ptr<const Picker> picker = picker_.load(std::memory_order_acquire);
  if (picker->empty()) return GRPC_CHANNEL_TRANSIENT_FAILURE;
  grpc_connectivity_state best = GRPC_CHANNEL_SHUTDOWN;
  for (const auto& endpoint : picker->eligible()) {
    grpc_connectivity_state state = endpoint->channel().GetState(try_to_connect);
    if (Rank(state) > Rank(best)) best = state;
  }
  return best;
}

void LbChannel::NotifyOnStateChangeImpl(grpc_connectivity_state last_observed,
                                        gpr_timespec deadline, grpc::CompletionQueue* cq,
                                        void* tag) {
  // Approximation: watches one endpoint (gRPC offers no aggregate watch to delegate to).
  auto delegate = StateDelegate();
  grpc_connectivity_state current = delegate->GetState(false);
  if (GetState(false) != last_observed) {
    // Already changed: pass a state the delegate is not in, so the tag fires at once.
    current = current == GRPC_CHANNEL_IDLE ? GRPC_CHANNEL_READY : GRPC_CHANNEL_IDLE;
  }
  NotifyOnStateChangeOn(*delegate, current, deadline, cq, tag);
}

bool LbChannel::WaitForStateChangeImpl(grpc_connectivity_state last_observed,
                                       gpr_timespec deadline) {
  if (GetState(false) != last_observed) return true;
  auto delegate = StateDelegate();
  return WaitForStateChangeOn(*delegate, delegate->GetState(false), deadline);
}

grpc::CompletionQueue* LbChannel::CallbackCQ() { return CallbackCQOf(*lame_); }

}  // namespace podlb::client
