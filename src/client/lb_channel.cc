#include "client/lb_channel.h"

#include <arpa/inet.h>
#include <grpc/grpc.h>

#include <random>
#include <thread>
#include <vector>

#include "client/channel_access.h"
#include "core/hash.h"
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

// Counts a call as in flight on `stats` until its ClientContext releases the endpoint's
// channel (when the context is destroyed): the context's reference is swapped for one that
// carries a guard. Cheaper than an interceptor, for least_request without ejection, which needs
// calls in flight but no results.
class InFlightGuard {
 public:
  InFlightGuard(std::shared_ptr<grpc::Channel> channel,
                std::shared_ptr<balancing::EndpointStats> stats)
      : channel_(std::move(channel)), stats_(std::move(stats)) {
    stats_->CallStarted();
  }
  ~InFlightGuard() { stats_->CallAbandoned(); }
  InFlightGuard(const InFlightGuard&) = delete;
  InFlightGuard& operator=(const InFlightGuard&) = delete;

  grpc::Channel* channel() const { return channel_.get(); }

 private:
  const std::shared_ptr<grpc::Channel> channel_;
  const std::shared_ptr<balancing::EndpointStats> stats_;
};

void TrackInFlight(grpc::ClientContext& context,
                   const std::shared_ptr<balancing::EndpointStats>& stats) {
  std::shared_ptr<grpc::Channel>& held = ChannelHeldBy(context);
  if (!held) return;  // the call was not created; nothing will run on it
  auto guard = std::make_shared<InFlightGuard>(std::move(held), stats);
  held = std::shared_ptr<grpc::Channel>(guard, guard->channel());
}

// PickArgs::usable: skip endpoints whose channel is in TRANSIENT_FAILURE while another is usable.
bool ChannelUsable(const void* context, uint32_t index) {
  const auto& snapshot = *static_cast<const balancing::BalancerSnapshot*>(context);
  const auto* endpoint =
      static_cast<const EndpointChannel*>(snapshot.at(index).attachment.get());
  return endpoint->channel().GetState(false) != GRPC_CHANNEL_TRANSIENT_FAILURE;
}

const EndpointChannel& ChannelOf(const balancing::BalancedEndpoint& entry) {
  return *static_cast<const EndpointChannel*>(entry.attachment.get());
}

// The xorshift64* generator of the calling thread: no shared cache line, no lock.
uint64_t NextRandom() {
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

balancing::ServicePolicy LibraryDefaults(LbPolicy policy, bool outlier_detection,
                                         bool zone_aware, const std::string& hash_header,
                                         uint32_t subset_size) {
  balancing::ServicePolicy defaults = balancing::DataPathDefaults();
  switch (policy) {
    case LbPolicy::kRoundRobin: defaults.lb_policy = balancing::PolicyKind::kRoundRobin; break;
    case LbPolicy::kLeastRequest: defaults.lb_policy = balancing::PolicyKind::kLeastRequest; break;
    case LbPolicy::kPeakEwma: defaults.lb_policy = balancing::PolicyKind::kPeakEwma; break;
    case LbPolicy::kRingHash: defaults.lb_policy = balancing::PolicyKind::kRingHash; break;
  }
  defaults.outlier.enabled = outlier_detection;
  defaults.zone_aware = zone_aware;
  if (!hash_header.empty()) defaults.hash_header = hash_header;
  defaults.subset_size = subset_size;
  return defaults;
}

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
      lame_(MakeLameChannel(key)) {
  balancer_ = std::make_shared<balancing::Balancer>(
      key_, balancing::BalancerOptions{
                .defaults = options_.defaults,
                .local_zone = options_.zone,
                .log_prefix = "podlb client",
                .client_id = options_.client_id,
                // `this` outlives the balancer's Update calls (the subscription ends first).
                .attach = [this](const balancing::BalancedEndpoint& entry,
                                 const balancing::ServicePolicy& policy,
                                 const std::shared_ptr<const void>& previous) {
                  return Attach(entry, policy, previous);
                }});
}

LbChannel::~LbChannel() {
  subscription_.reset();  // no Update() may run past this point
}

std::shared_ptr<const void> LbChannel::Attach(const balancing::BalancedEndpoint& entry,
                                              const balancing::ServicePolicy& policy,
                                              const std::shared_ptr<const void>& previous) {
  const CallTracking tracking = TrackingFor(policy);
  if (previous) {
    auto* before = static_cast<const EndpointChannel*>(previous.get());
    // Same pod address, same tracking: keep its channel (and so its connection).
    if (before->tracking() == tracking && before->stats() == entry.stats) return previous;
  }
  // A new pod, or the policy now needs call results it did not (or no longer does): a new
  // grpc::Channel with equal arguments shares gRPC's subchannel, so this does not reconnect.
  auto channel = std::make_shared<const EndpointChannel>(
      entry.host_port, IsIpv6(entry.endpoint.address), options_.credentials,
      options_.channel_args, methods_, tracking,
      CallSink{.stats = entry.stats, .balancer = balancer_, .metrics = metrics_});
  // Connect now, so the pod's first call does not pay for the handshake.
  channel->channel().GetState(true);
  channels_created_.fetch_add(1, std::memory_order_relaxed);
  return channel;
}

void LbChannel::Update(const EndpointSetConstSharedPtr& set) {
  const uint64_t created_before = channels_created_.load(std::memory_order_relaxed);
  // Removed endpoints' channels are released by the balancer's new table; calls in flight on
  // them hold their own reference (ClientContext), so they finish and the connection closes
  // after the last one.
  balancer_->Update(set, balancing::MonotonicNanos());
  updates_.fetch_add(1, std::memory_order_relaxed);
  auto snapshot = balancer_->Current(balancing::MonotonicNanos());
  size_t draining = 0;
  for (const auto& e : snapshot->table->endpoints) draining += e.draining;
  LogInfo("podlb client: {} now has {} eligible endpoints{}, {} draining ({} new); {}",
          key_.ToString(), snapshot->candidates.size(),
          snapshot->table->subset
              ? " in its subset of " + std::to_string(snapshot->table->service_eligible)
              : "",
          draining, channels_created_.load(std::memory_order_relaxed) - created_before,
          balancing::ToString(snapshot->policy.lb_policy));
}

LbChannelStats LbChannel::Stats() const {
  auto snapshot = balancer_->Current(balancing::MonotonicNanos());
  return LbChannelStats{.eligible = snapshot->candidates.size(),
                        .channels = snapshot->table->endpoints.size(),
                        .updates = updates_.load(std::memory_order_relaxed),
                        .channels_created = channels_created_.load(std::memory_order_relaxed)};
}

ChannelStats LbChannel::Snapshot() const {
  const int64_t now = balancing::MonotonicNanos();
  auto snapshot = balancer_->Current(now);
  ChannelStats stats;
  stats.service = key_.ToString();
  stats.policy = std::string(balancing::ToString(snapshot->policy.lb_policy));
  stats.service_endpoints = snapshot->table->service_eligible;
  for (const balancing::EndpointView& v : balancer_->Describe(now)) {
    stats.endpoints.push_back(EndpointStatsView{.address = v.host_port,
                                                .pod_name = v.pod_name,
                                                .zone = v.zone,
                                                .draining = v.draining,
                                                .ejected = v.ejected,
                                                .in_flight = v.in_flight,
                                                .latency_estimate_ms = v.rtt_estimate_ms,
                                                .calls = v.calls,
                                                .failures = v.failures,
                                                .times_ejected = static_cast<uint32_t>(v.ejections)});
  }
  stats.ejections = balancer_->ejections_total();
  for (int code = -1; code <= 16; ++code) {
    if (uint64_t n = metrics_->calls_with_status(code)) stats.calls_by_status[code] = n;
  }
  // Quantiles from the histogram of all classes: the upper bound of the bucket holding them.
  std::array<uint64_t, balancing::kLatencyBucketsSeconds.size() + 1> all{};
  for (auto status_class : {balancing::StatusClass::kOk, balancing::StatusClass::kFailure,
                            balancing::StatusClass::kError}) {
    auto view = metrics_->Latency(status_class);
    for (size_t i = 0; i < all.size(); ++i) all[i] += view.buckets[i];
  }
  auto quantile = [&](double q) {
    const uint64_t total = all.back();
    if (total == 0) return 0.0;
    for (size_t i = 0; i < balancing::kLatencyBucketsSeconds.size(); ++i) {
      if (static_cast<double>(all[i]) >= q * static_cast<double>(total))
        return balancing::kLatencyBucketsSeconds[i] * 1000;
    }
    return balancing::kLatencyBucketsSeconds.back() * 1000;
  };
  stats.latency_p50_ms = quantile(0.5);
  stats.latency_p99_ms = quantile(0.99);
  return stats;
}

grpc::internal::Call LbChannel::CreateCall(const grpc::internal::RpcMethod& method,
                                           grpc::ClientContext* context,
                                           grpc::CompletionQueue* cq) {
  // Holding the snapshot keeps the picked endpoint's channel alive until the call owns a
  // reference of its own (grpc::Channel::CreateCall stores one in the ClientContext).
  const int64_t now = balancing::MonotonicNanos();
  balancing::BalancerSnapshotConstSharedPtr snapshot = balancer_->Current(now);
  balancing::PickArgs args{.now_nanos = now,
                           .random = NextRandom(),
                           .usable = &ChannelUsable,
                           .usable_context = snapshot.get()};
  if (snapshot->policy.lb_policy == balancing::PolicyKind::kRingHash) {
    const auto& metadata = MetadataSentBy(*context);
    if (auto it = metadata.find(snapshot->policy.hash_header); it != metadata.end()) {
      args.has_hash = true;
      args.hash = HashKey(it->second);
    }
  }
  const uint32_t index = snapshot->Pick(args);
  const void* tag = method.channel_tag();  // a RegisteredMethod of ours, or null (generic stubs)
  if (index == balancing::kNoEndpoint) {
    // The tag means nothing to the lame channel: fail the call by name.
    const grpc::internal::RpcMethod by_name(method.name(), method.suffix_for_stats(),
                                            method.method_type());
    return CreateCallOn(*lame_, by_name, context, cq);
  }
  const EndpointChannel& endpoint = ChannelOf(snapshot->at(index));
  const grpc::internal::RpcMethod& on_endpoint =
      tag ? endpoint.Registered(*static_cast<const RegisteredMethod*>(tag), method) : method;
  grpc::internal::Call call = CreateCallOn(endpoint.channel(), on_endpoint, context, cq);
  if (endpoint.tracking() == CallTracking::kInFlight) TrackInFlight(*context, endpoint.stats());
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
  auto snapshot = balancer_->Current(balancing::MonotonicNanos());
  if (snapshot->candidates.empty()) return lame_;
  return ChannelOf(snapshot->at(snapshot->candidates[0].index)).shared_channel();
}

grpc_connectivity_state LbChannel::GetState(bool try_to_connect) {
  auto snapshot = balancer_->Current(balancing::MonotonicNanos());
  if (snapshot->candidates.empty()) return GRPC_CHANNEL_TRANSIENT_FAILURE;
  grpc_connectivity_state best = GRPC_CHANNEL_SHUTDOWN;
  for (const balancing::Candidate& c : snapshot->candidates) {
    grpc_connectivity_state state = ChannelOf(snapshot->at(c.index)).channel().GetState(try_to_connect);
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
