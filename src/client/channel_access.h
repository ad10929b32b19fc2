// Access to grpc::ChannelInterface's private virtuals (CreateCall, NotifyOnStateChangeImpl,
// WaitForStateChangeImpl, CallbackCQ) so a channel of our own can forward a call to the
// grpc::Channel it picked, and to the channel reference and the metadata a grpc::ClientContext
// holds for its call.
// Pure functions: callable from any thread.
//
// Why this exists: grpc++ 1.51 has no public resolver or LB-policy API, and ChannelInterface
// makes these methods private with a fixed friend list (stubs, DelegatingChannel). Overriding
// them is allowed (a subclass may override private virtuals); *calling* them on another object
// is not. C++ waives access checks in explicit template instantiations ([temp.spec.general]/6),
// so the instantiations below take member pointers legally. If a future gRPC changes a
// signature, this file stops compiling rather than misbehaving.
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/client_context.h>
#include <grpcpp/impl/channel_interface.h>

namespace podlb::client {

using CreateCallFn = grpc::internal::Call (grpc::ChannelInterface::*)(
    const grpc::internal::RpcMethod&, grpc::ClientContext*, grpc::CompletionQueue*);
using NotifyOnStateChangeFn = void (grpc::ChannelInterface::*)(grpc_connectivity_state,
                                                                 gpr_timespec,
                                                                 grpc::CompletionQueue*, void*);
using WaitForStateChangeFn = bool (grpc::ChannelInterface::*)(grpc_connectivity_state,
                                                                gpr_timespec);
using CallbackCQFn = grpc::CompletionQueue* (grpc::ChannelInterface::*)();
using ContextChannelMember = std::shared_ptr<grpc::Channel> grpc::ClientContext::*;
using ContextMetadataMember = std::multimap<std::string, std::string> grpc::ClientContext::*;

namespace channel_access_internal {
struct CreateCallTag {};
struct NotifyTag {};
struct WaitTag {};
struct CallbackCQTag {};
struct ContextChannelTag {};
struct ContextMetadataTag {};
CreateCallFn Get(CreateCallTag);
NotifyOnStateChangeFn Get(NotifyTag);
WaitForStateChangeFn Get(WaitTag);
CallbackCQFn Get(CallbackCQTag);
ContextChannelMember Get(ContextChannelTag);
ContextMetadataMember Get(ContextMetadataTag);

template <typename Tag, typename Fn, Fn kMember>
struct Expose {
  friend Fn Get(Tag) { return kMember; }
};
template struct Expose<CreateCallTag, CreateCallFn, &grpc::ChannelInterface::CreateCall>;
template struct Expose<NotifyTag, NotifyOnStateChangeFn,
                       &grpc::ChannelInterface::NotifyOnStateChangeImpl>;
template struct Expose<WaitTag, WaitForStateChangeFn,
                       &grpc::ChannelInterface::WaitForStateChangeImpl>;
template struct Expose<CallbackCQTag, CallbackCQFn, &grpc::ChannelInterface::CallbackCQ>;
template struct Expose<ContextChannelTag, ContextChannelMember, &grpc::ClientContext::channel_>;
template struct Expose<ContextMetadataTag, ContextMetadataMember,
                       &grpc::ClientContext::send_initial_metadata_>;
}  // namespace channel_access_internal

// Starts a call on `channel` exactly as a generated stub would (virtual dispatch included).
inline grpc::internal::Call CreateCallOn(grpc::ChannelInterface& channel,
                                         const grpc::internal::RpcMethod& method,
                                         grpc::ClientContext* context, grpc::CompletionQueue* cq) {
  return (channel.*Get(channel_access_internal::CreateCallTag{}))(method, context, cq);
}

inline void NotifyOnStateChangeOn(grpc::ChannelInterface& channel,
                                  grpc_connectivity_state last_observed, gpr_timespec deadline,
                                  grpc::CompletionQueue* cq, void* tag) {
  (channel.*Get(channel_access_internal::NotifyTag{}))(last_observed, deadline, cq, tag);
}

inline bool WaitForStateChangeOn(grpc::ChannelInterface& channel,
                                 grpc_connectivity_state last_observed, gpr_timespec deadline) {
  return (channel.*Get(channel_access_internal::WaitTag{}))(last_observed, deadline);
}

// The callback-API completion queue of `channel`.
inline grpc::CompletionQueue* CallbackCQOf(grpc::ChannelInterface& channel) {
  return (channel.*Get(channel_access_internal::CallbackCQTag{}))();
}

// The reference to the channel a ClientContext's call runs on (set by CreateCall, released when
// the context is destroyed). Touch it only between CreateCall and the call's first operation.
inline std::shared_ptr<grpc::Channel>& ChannelHeldBy(grpc::ClientContext& context) {
  return context.*Get(channel_access_internal::ContextChannelTag{});
}

// The metadata the caller added with ClientContext::AddMetadata (read before the call starts,
// for ring_hash's key header).
inline const std::multimap<std::string, std::string>& MetadataSentBy(
    const grpc::ClientContext& context) {
  return context.*Get(channel_access_internal::ContextMetadataTag{});
}

}  // namespace podlb::client
