// libpodlb: a grpc++ channel that follows a Kubernetes Service's pods and balances every call.
// Pass the channel to generated stubs like any grpc::Channel; calls may be made from any thread.
// CreateChannel may be called from any thread; the channel owns its discovery thread.
//
//   auto channel = podlb::CreateChannel("kubernetes:///greeter.default:grpc");
//   helloworld::Greeter::Stub stub(channel);
//
// Targets:
//   kubernetes:///NAME.NAMESPACE:PORT   watch the Service's EndpointSlices (PORT: number or name)
//   dns:///HOST:PORT                    re-resolve a headless Service name every dns_interval
//   file:///PATH#NAMESPACE/NAME:PORT    a podlb endpoints file, reloaded when it changes
#pragma once

#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/support/channel_arguments.h>

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace podlb {

enum class LbPolicy {
  kRoundRobin,
  // Two random endpoints, the one with fewer calls in flight wins (adapts to slow pods).
  kPowerOfTwoChoices,
};

struct ChannelOptions {
  LbPolicy policy = LbPolicy::kPowerOfTwoChoices;
  // Per-endpoint channel credentials and arguments; nullptr credentials mean plaintext.
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  grpc::ChannelArguments channel_args;
  // How long CreateChannel waits for discovery's first answer before returning a channel whose
  // calls fail with UNAVAILABLE until endpoints appear.
  std::chrono::milliseconds initial_wait{std::chrono::seconds(2)};
  // dns:/// only.
  std::chrono::milliseconds dns_interval{std::chrono::seconds(5)};
  std::string dns_servers;  // "host:port[,host:port]"; empty: /etc/resolv.conf
  // kubernetes:/// only. Empty: in-cluster service-account config.
  std::string kubeconfig;
  std::string default_namespace = "default";  // for kubernetes:///NAME:PORT
};

// The channel, or why the target or options are unusable (bad target, unreadable file, ...).
absl::StatusOr<std::shared_ptr<grpc::ChannelInterface>> CreateChannelOrError(
    const std::string& target, const ChannelOptions& options = {});

// Like grpc::CreateChannel: never null. On an error the channel is "lame": every call fails with
// UNAVAILABLE carrying the error text, which is also logged.
std::shared_ptr<grpc::ChannelInterface> CreateChannel(const std::string& target,
                                                      const ChannelOptions& options = {});

}  // namespace podlb
