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
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace podlb {

// The balancing policy when the Service's `podlb.io/lb-policy` annotation does not name one (the
// annotation wins; docs/balancing.md has the table).
enum class LbPolicy {
  kRoundRobin,
  // Two endpoints (one in turn, one at random); the one with fewer calls in flight wins.
  kLeastRequest,
  // Like kLeastRequest, on a peak-sensitive moving average of latency times calls in flight:
  // a slow, failing or stuck pod loses its traffic even at low concurrency.
  kPeakEwma,
  // Consistent hashing on the value of `hash_header` in the call's metadata
  // (ClientContext::AddMetadata); calls without it rotate.
  kRingHash,
  kPowerOfTwoChoices = kLeastRequest,  // the name of the first release
};

struct ChannelOptions {
  LbPolicy policy = LbPolicy::kPeakEwma;
  // Passive outlier ejection: a pod whose calls fail (UNAVAILABLE, INTERNAL, UNKNOWN,
  // DEADLINE_EXCEEDED, or no connection) three times in a row, or half of them over 10 s, takes
  // no calls for a while. `podlb.io/outlier-*` annotations tune or disable it per Service.
  bool outlier_detection = true;
  // The caller's zone (topology.kubernetes.io/zone); zone-aware Services prefer endpoints in it.
  std::string zone;
  std::string hash_header = "x-podlb-hash-key";  // kRingHash, unless annotated
  // Subsetting: connect to about this many of the Service's pods instead of all of them (0: all;
  // the `podlb.io/subset-size` annotation wins). Not with kRingHash. Clients are numbered by a
  // trailing number in `client_id` ("orders-7" is client 7): give the clients of one Service
  // ids numbered 0, 1, 2, ... (a StatefulSet's pod names are) for every pod to get an equal
  // share; docs/balancing.md#subsetting explains why and what happens otherwise.
  uint32_t subset_size = 0;
  std::string client_id;  // empty: $POD_NAME, else $HOSTNAME, else the host name
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

// What one channel's balancer sees (a snapshot; figures since the channel was created).
struct EndpointStatsView {
  std::string address;  // host:port
  std::string pod_name;
  std::string zone;
  bool draining = false;
  bool ejected = false;
  int64_t in_flight = 0;
  double latency_estimate_ms = 0;  // peak-EWMA estimate (0 until a call finished)
  uint64_t calls = 0;              // finished calls (with a result) on this endpoint
  uint64_t failures = 0;
  uint32_t times_ejected = 0;  // since the channel was created
};
struct ChannelStats {
  std::string service;  // namespace/name:port
  std::string policy;   // the policy in force (after annotations)
  std::vector<EndpointStatsView> endpoints;  // with subsetting: this channel's subset
  size_t service_endpoints = 0;  // the Service's eligible endpoints (all of them, not the subset)
  uint64_t ejections = 0;
  // Calls by gRPC status code (-1: ended without a status), and latency quantiles over the
  // channel's life, from its histogram (0 when no call finished).
  std::map<int, uint64_t> calls_by_status;
  double latency_p50_ms = 0;
  double latency_p99_ms = 0;
};

// The stats of a channel made by CreateChannel; an error for any other channel.
absl::StatusOr<ChannelStats> GetChannelStats(const grpc::ChannelInterface& channel);

// The channel, or why the target or options are unusable (bad target, unreadable file, ...).
absl::StatusOr<std::shared_ptr<grpc::ChannelInterface>> CreateChannelOrError(
    const std::string& target, const ChannelOptions& options = {});

// Like grpc::CreateChannel: never null. On an error the channel is "lame": every call fails with
// UNAVAILABLE carrying the error text, which is also logged.
std::shared_ptr<grpc::ChannelInterface> CreateChannel(const std::string& target,
                                                      const ChannelOptions& options = {});

}  // namespace podlb
