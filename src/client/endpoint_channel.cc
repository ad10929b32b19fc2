#include "client/endpoint_channel.h"

#include <grpcpp/create_channel.h>
#include <grpcpp/support/client_interceptor.h>

#include <vector>

namespace podlb::client {
namespace {

// Reports one call to the balancing core: in flight from creation, then its latency and status
// when the status arrives (or "abandoned" if the call is destroyed without one). Lives in the
// call's ClientContext.
class CallResultInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit CallResultInterceptor(const CallSink& sink)
      : sink_(sink), started_(balancing::MonotonicNanos()) {
    sink_.stats->CallStarted();
  }
  ~CallResultInterceptor() override {
    if (!finished_) sink_.stats->CallAbandoned();
  }

  void Intercept(grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::POST_RECV_STATUS)) {
      Finish(methods->GetRecvStatus()->error_code());
    }
    methods->Proceed();
  }

 private:
  void Finish(grpc::StatusCode code) {
    finished_ = true;
    const int64_t now = balancing::MonotonicNanos();
    const int64_t latency = now - started_;
    if (sink_.metrics) sink_.metrics->Record(code, latency);
    if (code == grpc::StatusCode::CANCELLED) {
      sink_.stats->CallAbandoned();  // the caller gave up: says nothing about the pod
      return;
    }
    const bool failure = balancing::IsEndpointFailure(code);
    const uint32_t consecutive = sink_.stats->CallFinished(failure, latency, now);
    if (failure) {
      // Failures only: the balancer is reached through a weak reference (a call may outlive
      // its LbChannel).
      if (auto balancer = sink_.balancer.lock())
        balancer->OnFailure(*sink_.stats, consecutive, now);
    }
  }

  const CallSink& sink_;
  const int64_t started_;
  bool finished_ = false;
};

class CallResultInterceptorFactory final
    : public grpc::experimental::ClientInterceptorFactoryInterface {
 public:
  explicit CallResultInterceptorFactory(CallSink sink) : sink_(std::move(sink)) {}
  grpc::experimental::Interceptor* CreateClientInterceptor(
      grpc::experimental::ClientRpcInfo*) override {
    return new CallResultInterceptor(sink_);
  }

 private:
  const CallSink sink_;
};

std::shared_ptr<grpc::Channel> MakeChannel(const std::string& host_port, bool ipv6,
                                           const std::shared_ptr<grpc::ChannelCredentials>& creds,
                                           const grpc::ChannelArguments& args,
                                           CallTracking tracking, CallSink sink) {
  // ipv4:/ipv6: targets skip the resolver; channels with equal arguments share gRPC's global
  // subchannel pool, so re-creating one (e.g. with an interceptor) does not reconnect.
  const std::string target = (ipv6 ? "ipv6:" : "ipv4:") + host_port;
  auto credentials = creds ? creds : grpc::InsecureChannelCredentials();
  if (tracking != CallTracking::kResults) return grpc::CreateCustomChannel(target, credentials, args);
  std::vector<std::unique_ptr<grpc::experimental::ClientInterceptorFactoryInterface>> factories;
  factories.push_back(std::make_unique<CallResultInterceptorFactory>(std::move(sink)));
  return grpc::experimental::CreateCustomChannelWithInterceptors(target, credentials, args,
                                                                 std::move(factories));
}

}  // namespace

CallTracking TrackingFor(const balancing::ServicePolicy& policy) {
  if (policy.lb_policy == balancing::PolicyKind::kPeakEwma || policy.outlier.enabled)
    return CallTracking::kResults;
  if (policy.lb_policy == balancing::PolicyKind::kLeastRequest) return CallTracking::kInFlight;
  return CallTracking::kNone;
}

EndpointChannel::EndpointChannel(std::string host_port, bool ipv6,
                                 const std::shared_ptr<grpc::ChannelCredentials>& credentials,
                                 const grpc::ChannelArguments& args,
                                 std::shared_ptr<const void> methods_owner, CallTracking tracking,
                                 CallSink sink)
    : host_port_(std::move(host_port)),
      tracking_(tracking),
      stats_(sink.stats),
      channel_(MakeChannel(host_port_, ipv6, credentials, args, tracking, std::move(sink))),
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

}  // namespace podlb::client
