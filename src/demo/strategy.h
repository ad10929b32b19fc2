// Strategy: one way a gRPC client can reach the pods of default/greeter (ClusterIP, headless DNS,
// podlb xDS, proxy, library). Each strategy is one small class: Start runs what it needs beside
// the cluster (a forwarder, a DNS server, a control plane…), MakeCaller gives the workload one
// independent client channel. UnaryCaller: one client channel, called from the workload thread;
// its completion callback may run on any thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "demo/cluster.h"

namespace grpc {
class Channel;
class ChannelInterface;
class ChannelArguments;
}  // namespace grpc

namespace podlb::demo {

struct CallOutcome {
  bool ok = false;
  std::string pod;  // SimpleResponse.hostname; empty when the call failed
  std::string error;
};

class UnaryCaller {
 public:
  virtual ~UnaryCaller() = default;
  // Starts one grpc.testing.TestService/UnaryCall; `done` runs once, on any thread.
  virtual void Call(std::chrono::milliseconds deadline, std::function<void(CallOutcome)> done) = 0;
};

// A UnaryCaller over a grpc++ channel (what most strategies use).
std::unique_ptr<UnaryCaller> MakeChannelCaller(std::shared_ptr<grpc::ChannelInterface> channel);
// Channel arguments that give each demo client its own connections: grpc++ otherwise shares
// subchannels between channels with equal arguments, and K channels would be one connection.
grpc::ChannelArguments IndependentClientArgs(int client_index);

// Settings every strategy may read; filled from the command line.
struct StrategyOptions {
  std::chrono::milliseconds max_connection_age{10000};  // dns-maxage's server setting
  std::string podlb_binary;  // for strategies that run podlb components as child processes
  std::string work_dir;      // scratch space for config files of one run
  // The control plane's port for the xds strategy, the same for every run: grpc++ keeps one
  // XdsClient per process, which may outlive a run's channels and must find the next one.
  int xds_port = 0;
};

class Strategy {
 public:
  virtual ~Strategy() = default;
  virtual std::string name() const = 0;         // JSON name: "clusterip", "dns", …
  virtual std::string description() const = 0;  // one line for the report
  // The balancing policy it runs with, as the JSON's `policy` says ("" for the baselines).
  virtual std::string policy() const { return ""; }
  // Lets a strategy change the cluster it runs on (dns-maxage sets MAX_CONNECTION_AGE).
  virtual void ConfigureCluster(ClusterOptions&) const {}
  // Whether it needs the cluster's API server (kubeconfig); the runner skips it otherwise.
  virtual bool NeedsApiServer() const { return false; }
  // An Unimplemented status says the cluster lacks what the strategy needs (cluster DNS, say):
  // the run is reported as not available there, not as failed.
  virtual absl::Status Start(DemoCluster& cluster) = 0;
  virtual absl::StatusOr<std::unique_ptr<UnaryCaller>> MakeCaller(int client_index) = 0;
  // Called after the workload's channels were destroyed.
  virtual void Stop() = 0;
};

using StrategyMaker = std::function<std::unique_ptr<Strategy>(const StrategyOptions&)>;

// The strategies the demo knows, in report order. Each family registers itself explicitly.
class StrategyCatalog {
 public:
  // `policy_variant`: the same remedy under a non-default policy (proxy-round_robin, ...),
  // run only in the fault scenarios.
  void Add(std::string name, StrategyMaker maker, bool policy_variant = false);
  bool IsPolicyVariant(const std::string& name) const;
  bool Has(const std::string& name) const;
  std::unique_ptr<Strategy> Make(const std::string& name, const StrategyOptions& options) const;
  const std::vector<std::string>& names() const { return names_; }

 private:
  std::vector<std::string> names_;
  std::map<std::string, StrategyMaker> makers_;
  std::set<std::string> variants_;
};

// clusterip, dns, dns-maxage.
void RegisterBaselineStrategies(StrategyCatalog& catalog);
// xds (podlb control-plane), proxy (podlb proxy), library (libpodlb), and the proxy and the
// library under round_robin and least_request (policy variants for the fault scenarios).
void RegisterPodlbStrategies(StrategyCatalog& catalog);

}  // namespace podlb::demo
