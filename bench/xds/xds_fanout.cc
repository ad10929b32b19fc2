// xds_fanout: N lightweight ADS clients (grpc++ callback reactors on one channel each), each
// subscribed to CDS+EDS of M services, against an in-process AdsService fed by a Registry.
// For each of K endpoint changes: time from Registry::Publish to the moment the LAST client has
// the new ClusterLoadAssignment. Prints p50/p99/max, process RSS and CPU per push per client
// (clients and server share the process: both figures are upper bounds for the server alone).
//   xds_fanout [clients=1000] [services=10] [changes=50]
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <thread>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "core/logging.h"
#include "grpcpp/grpcpp.h"
#include "xds/type_urls.h"
#include "xds/xds_server.h"

namespace {

using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;
using Clock = std::chrono::steady_clock;

// Counts, per change number, how many clients have seen it.
struct Progress {
  absl::Mutex mu;
  std::vector<int> seen;  // index: change number
  int clients = 0;
};

class LightClient : public grpc::ClientBidiReactor<DiscoveryRequest, DiscoveryResponse> {
 public:
  LightClient(envoy::service::discovery::v3::AggregatedDiscoveryService::Stub* stub, int id,
              int services, Progress* progress)
      : progress_(progress), last_seen_(services, -1) {
    stub->async()->StreamAggregatedResources(&context_, this);
    std::vector<std::string> names;
    for (int s = 0; s < services; ++s) names.push_back("default/svc" + std::to_string(s) + ":80");
    for (auto type : {podlb::xds::kClusterType, podlb::xds::kClusterLoadAssignmentType}) {
      DiscoveryRequest r;
      if (type == podlb::xds::kClusterType) r.mutable_node()->set_id("bench-" + std::to_string(id));
      r.set_type_url(std::string(type));
      for (const auto& n : names) r.add_resource_names(n);
      subscriptions_.push_back(r);
      Enqueue(r);
    }
    StartRead(&response_);
    StartCall();
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;
    if (response_.type_url() == podlb::xds::kClusterLoadAssignmentType) {
      for (const auto& any : response_.resources()) {
        envoy::config::endpoint::v3::ClusterLoadAssignment cla;
        if (!any.UnpackTo(&cla) || cla.endpoints_size() == 0) continue;
        int s = std::stoi(cla.cluster_name().substr(11));  // "default/svc" + s + ":80"
        int change = static_cast<int>(
            cla.endpoints(0).lb_endpoints(0).endpoint().address().socket_address().port_value()) -
            10000;
        if (change > last_seen_[s]) {
          last_seen_[s] = change;
          if (change >= 0) {
            absl::MutexLock lock(&progress_->mu);
            progress_->seen[change]++;
          }
        }
      }
    }
    // ACK, as a real client does.
    for (auto r : subscriptions_) {
      if (r.type_url() != response_.type_url()) continue;
      r.clear_node();
      r.set_version_info(response_.version_info());
      r.set_response_nonce(response_.nonce());
      Enqueue(r);
    }
    StartRead(&response_);
  }
  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    queue_.pop_front();
    writing_ = false;
    if (ok && !queue_.empty()) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
  }
  void OnDone(const grpc::Status&) override {
    absl::MutexLock lock(&mu_);
    done_ = true;
  }
  // Cancels the stream and waits for OnDone, after which the reactor may be destroyed.
  void CancelAndWait() {
    context_.TryCancel();
    absl::MutexLock lock(&mu_);
    mu_.Await(absl::Condition(&done_));
  }

 private:
  void Enqueue(const DiscoveryRequest& r) {
    absl::MutexLock lock(&mu_);
    queue_.push_back(r);
    if (!writing_) {
      writing_ = true;
      StartWrite(&queue_.front());
    }
  }
  grpc::ClientContext context_;
  Progress* progress_;
  std::vector<int> last_seen_;
  std::vector<DiscoveryRequest> subscriptions_;
  DiscoveryResponse response_;
  absl::Mutex mu_;
  std::deque<DiscoveryRequest> queue_;
  bool writing_ = false;
  bool done_ = false;
};

long RssKb() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

std::vector<podlb::Endpoint> Endpoints(int change) {
  std::vector<podlb::Endpoint> out;
  for (int i = 0; i < 3; ++i) {
    podlb::Endpoint e;
    e.address = "10.0.0." + std::to_string(i + 1);
    e.port = static_cast<uint16_t>(10000 + change);
    e.ready = e.serving = true;
    out.push_back(e);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  int clients = argc > 1 ? std::atoi(argv[1]) : 1000;
  int services = argc > 2 ? std::atoi(argv[2]) : 10;
  int changes = argc > 3 ? std::atoi(argv[3]) : 50;
  podlb::SetLogLevel(podlb::LogLevel::kWarn);
  podlb::Registry registry;
  for (int s = 0; s < services; ++s) {
    registry.Publish({{"default", "svc" + std::to_string(s), "80"}}, Endpoints(-1));
  }
  podlb::xds::XdsServer server(registry, {.listen = "127.0.0.1:0", .tls = {}, .ads = {}});
  if (!server.Start().ok()) return 1;
  Progress progress;
  progress.seen.assign(changes, 0);
  progress.clients = clients;

  // A few channels shared round-robin: N streams, not N TCP connections (fd limits).
  std::vector<std::shared_ptr<grpc::Channel>> channels;
  std::vector<std::unique_ptr<envoy::service::discovery::v3::AggregatedDiscoveryService::Stub>> stubs;
  for (int c = 0; c < 8; ++c) {
    grpc::ChannelArguments args;
    args.SetInt("grpc.channel_id", c);  // distinct subchannels
    channels.push_back(grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(server.port()),
                                                 grpc::InsecureChannelCredentials(), args));
    stubs.push_back(envoy::service::discovery::v3::AggregatedDiscoveryService::NewStub(channels.back()));
  }
  std::vector<std::unique_ptr<LightClient>> fleet;
  for (int i = 0; i < clients; ++i) {
    fleet.push_back(std::make_unique<LightClient>(stubs[i % stubs.size()].get(), i, services,
                                                  &progress));
  }
  while (server.service().StreamCount() < static_cast<size_t>(clients)) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // harness setup, not a test
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  double cpu_before = CpuSeconds();
  std::vector<double> latencies_ms;
  for (int k = 0; k < changes; ++k) {
    auto start = Clock::now();
    registry.Publish({{"default", "svc" + std::to_string(k % services), "80"}}, Endpoints(k));
    absl::MutexLock lock(&progress.mu);
    auto all = [&] { return progress.seen[k] >= clients; };
    progress.mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(30));
    latencies_ms.push_back(
        std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  double cpu = CpuSeconds() - cpu_before;
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    return latencies_ms[std::min(latencies_ms.size() - 1,
                                 static_cast<size_t>(p * latencies_ms.size()))];
  };
  std::printf("xds_fanout: %d clients x %d services, %d changes\n", clients, services, changes);
  std::printf("| metric | podlb xDS | dns resolver |\n|---|---|---|\n");
  std::printf("| change -> last client p50 | %.1f ms | >= 30 s, only after a failure |\n", pct(0.5));
  std::printf("| change -> last client p99 | %.1f ms | |\n", pct(0.99));
  std::printf("| max | %.1f ms | |\n", latencies_ms.back());
  std::printf("| process RSS (server + clients) | %ld MB | |\n", RssKb() / 1024);
  std::printf("| CPU per push per client (server + clients) | %.1f us | |\n",
              cpu * 1e6 / (static_cast<double>(changes) * clients));
  for (auto& c : fleet) c->CancelAndWait();
  server.Stop();
  fleet.clear();
  return 0;
}
