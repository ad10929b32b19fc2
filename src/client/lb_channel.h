// LbChannel: a grpc::ChannelInterface that follows one ServiceKey in a Registry and starts each
// call on the grpc::Channel of an endpoint picked for that call by the balancing core (the
// library's thin adapter over balancing::Balancer). Generated stubs, the sync, async and
// callback APIs all work on it. Calls come from any thread and read the current snapshot
// without locks; endpoint updates arrive on the Registry's publishing thread.
#pragma once

#include <grpcpp/channel.h>

#include <atomic>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "balancing/balancer.h"
#include "balancing/call_metrics.h"
#include "client/endpoint_channel.h"
#include "core/registry.h"
#include "podlb/podlb.h"

namespace podlb::client {

// The library's defaults for `policy` (ChannelOptions), before the Service's annotations.
balancing::ServicePolicy LibraryDefaults(LbPolicy policy, bool outlier_detection = true,
                                         bool zone_aware = false,
                                         const std::string& hash_header = "",
                                         uint32_t subset_size = 0);

struct LbChannelOptions {
  balancing::ServicePolicy defaults = LibraryDefaults(LbPolicy::kPeakEwma);
  std::string zone;       // the caller's zone
  std::string client_id;  // this client's id for subsetting (balancing/subset.h)
  std::shared_ptr<grpc::ChannelCredentials> credentials;  // nullptr: plaintext
  grpc::ChannelArguments channel_args;
};

// What a test or benchmark may look at.
struct LbChannelStats {
  size_t eligible = 0;      // endpoints taking new calls
  size_t channels = 0;      // endpoint channels held (eligible + draining + not serving)
  uint64_t updates = 0;     // endpoint sets applied
  uint64_t channels_created = 0;
};

class LbChannel final : public grpc::ChannelInterface {
 public:
  // Follows `key` in `registry`. `owned` (e.g. the discovery source and the registry itself) is
  // released only after the channel has unsubscribed, so it may own `registry`.
  static std::shared_ptr<LbChannel> Create(Registry& registry, const ServiceKey& key,
                                           LbChannelOptions options,
                                           std::shared_ptr<void> owned = nullptr);
  ~LbChannel() override;

  // READY if any eligible endpoint is; CONNECTING, IDLE, TRANSIENT_FAILURE likewise in that
  // order; TRANSIENT_FAILURE when there is no eligible endpoint.
  grpc_connectivity_state GetState(bool try_to_connect) override;

  LbChannelStats Stats() const;
  // The public snapshot (podlb::GetChannelStats).
  ChannelStats Snapshot() const;
  const ServiceKey& key() const { return key_; }

  // Applies one endpoint set (the Registry subscription calls it; public for tests).
  void Update(const EndpointSetConstSharedPtr& set);

 private:
  LbChannel(const ServiceKey& key, LbChannelOptions options, std::shared_ptr<void> owned);

  grpc::internal::Call CreateCall(const grpc::internal::RpcMethod& method,
                                  grpc::ClientContext* context,
                                  grpc::CompletionQueue* cq) override;
  void PerformOpsOnCall(grpc::internal::CallOpSetInterface* ops,
                        grpc::internal::Call* call) override;
  void* RegisterMethod(const char* method) override;
  void NotifyOnStateChangeImpl(grpc_connectivity_state last_observed, gpr_timespec deadline,
                               grpc::CompletionQueue* cq, void* tag) override;
  bool WaitForStateChangeImpl(grpc_connectivity_state last_observed,
                              gpr_timespec deadline) override;
  grpc::CompletionQueue* CallbackCQ() override;

  // Methods registered by stubs on this channel. Shared with the EndpointChannels, whose
  // per-endpoint registrations point at the names held here.
  struct MethodTable {
    absl::Mutex mu;
    std::deque<RegisteredMethod> methods ABSL_GUARDED_BY(mu);  // a deque: addresses are stable
    std::map<std::string, const RegisteredMethod*, std::less<>> by_name ABSL_GUARDED_BY(mu);
  };

  // The channel state waits are delegated to: the first eligible endpoint, else the lame one.
  std::shared_ptr<grpc::Channel> StateDelegate();
  // The balancer's attachment for one endpoint: its channel, kept while it fits the policy.
  std::shared_ptr<const void> Attach(const balancing::BalancedEndpoint& entry,
                                     const balancing::ServicePolicy& policy,
                                     const std::shared_ptr<const void>& previous);

  // Declared first so it is destroyed last, after the subscription below.
  const std::shared_ptr<void> owned_;
  const ServiceKey key_;
  const LbChannelOptions options_;
  // Fails every call with UNAVAILABLE naming the service; used while no endpoint is eligible.
  // Its callback completion queue also serves callback-API calls on every endpoint.
  const std::shared_ptr<grpc::Channel> lame_;

  const std::shared_ptr<MethodTable> methods_ = std::make_shared<MethodTable>();
  const std::shared_ptr<balancing::CallMetrics> metrics_ =
      std::make_shared<balancing::CallMetrics>();
  // Shared so that each endpoint's call hook can hold it weakly (calls may outlive the channel).
  std::shared_ptr<balancing::Balancer> balancer_;

  std::atomic<uint64_t> updates_{0};
  std::atomic<uint64_t> channels_created_{0};

  std::unique_ptr<Subscription> subscription_;
};

}  // namespace podlb::client
