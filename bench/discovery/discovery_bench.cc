// Discovery figures for BENCHMARKS.md, printed as one table:
//  - decoding one EndpointSlice of 100 endpoints (JSON text → typed slice);
//  - the initial list of S Services × E endpoints through the real KubernetesSource against the
//    API-server stand-in (TLS), and the Registry's memory for that state;
//  - latency from a change written to the stand-in's store to the Registry subscriber's
//    notification (p50/p99 over many changes);
//  - watches and lists the API server saw for all S Services (must stay 1 + 1 per type).
// Usage: discovery_bench [--services 1000] [--endpoints 10] [--changes 300]
#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/registry.h"
#include "discovery/kubernetes/endpoint_slice_decoder.h"
#include "discovery/kubernetes/kubernetes_source.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "sandbox/apiserver/api_server.h"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

json MakeSlice(const std::string& service, int index, int endpoints, int generation) {
  json eps = json::array();
  for (int i = 0; i < endpoints; ++i) {
    int host = index * endpoints + i;
    eps.push_back({{"addresses", {fmt::format("10.{}.{}.{}", host / 65536 % 256, host / 256 % 256, host % 256)}},
                   {"conditions", {{"ready", (i + generation) % 7 != 0}, {"serving", true}, {"terminating", false}}},
                   {"nodeName", fmt::format("node-{}-g{}", i % 3, generation)},  // every change is visible
                   {"zone", fmt::format("zone-{}", i % 3)},
                   {"targetRef", {{"kind", "Pod"}, {"name", fmt::format("{}-pod-{}", service, i)}, {"namespace", "default"}}}});
  }
  return {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata",
           {{"name", service + "-abcde"},
            {"namespace", "default"},
            {"labels", {{"kubernetes.io/service-name", service},
                        {"endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io"}}}}},
          {"addressType", "IPv4"},
          {"ports", {{{"name", "grpc"}, {"port", 50051}, {"protocol", "TCP"}}}},
          {"endpoints", eps}};
}

// Headless: the sandbox's ClusterIP range holds 1022 addresses (docs/sandbox.md), fewer than a
// large --services asks for, and discovery reads no ClusterIP.
json MakeService(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"clusterIP", "None"},
                    {"selector", {{"app", name}}},
                    {"ports", {{{"name", "grpc"}, {"port", 50051}, {"targetPort", 50051}, {"protocol", "TCP"}}}}}}};
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(p * v.size()))];
}

size_t HeapInUse() { return mallinfo2().uordblks; }

}  // namespace

int main(int argc, char** argv) {
  int services = 1000, endpoints = 10, changes = 300;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--services")) services = std::stoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--endpoints")) endpoints = std::stoi(argv[i + 1]);
    else if (!strcmp(argv[i], "--changes")) changes = std::stoi(argv[i + 1]);
  }
  std::vector<std::pair<std::string, std::string>> rows;

  // 1. Decode one slice of 100 endpoints.
  {
    std::string text = MakeSlice("greeter", 0, 100, 0).dump();
    const int iterations = 2000;
    auto start = Clock::now();
    size_t total = 0;
    for (int i = 0; i < iterations; ++i) {
      auto slice = podlb::DecodeEndpointSlice(json::parse(text));
      total += slice->endpoints.size();
    }
    double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count() / iterations;
    rows.push_back({"decode 1 EndpointSlice, 100 endpoints (parse + decode)", fmt::format("{:.1f} us ({} B JSON)", us, text.size())});
    if (total == 0) return 1;
  }

  // 2. Registry memory for services × endpoints, published directly.
  {
    size_t before = HeapInUse();
    auto registry = std::make_unique<podlb::Registry>();
    for (int s = 0; s < services; ++s) {
      std::vector<podlb::Endpoint> eps;
      for (int i = 0; i < endpoints; ++i) {
        eps.push_back(podlb::Endpoint{.address = fmt::format("10.0.{}.{}", s % 256, i), .port = 50051,
                                      .pod_name = fmt::format("svc-{}-pod-{}", s, i), .node_name = "node-1",
                                      .zone = "zone-a", .ready = true, .serving = true});
      }
      std::string name = fmt::format("svc-{}", s);
      registry->Publish({{"default", name, "grpc"}, {"default", name, "50051"}}, std::move(eps));
    }
    size_t after = HeapInUse();
    rows.push_back({fmt::format("registry memory, {} services x {} endpoints", services, endpoints),
                    fmt::format("{:.1f} MiB ({:.0f} B per endpoint)", (after - before) / 1048576.0,
                                double(after - before) / (services * endpoints))});
  }

  // 3. Initial list through the real source against the stand-in.
  auto store = std::make_shared<podlb::sandbox::ResourceStore>();
  for (int s = 0; s < services; ++s) {
    std::string name = fmt::format("svc-{}", s);
    (void)store->Create("services", "default", MakeService(name));
    (void)store->Create("endpointslices", "default", MakeSlice(name, s, endpoints, 0));
  }
  podlb::sandbox::ApiServerOptions options;
  options.tokens = {"bench-token"};
  podlb::sandbox::ApiServer server(options, store);
  if (auto status = server.Start(); !status.ok()) {
    fprintf(stderr, "api server: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  std::string dir = std::filesystem::temp_directory_path() / "podlb-discovery-bench";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/kubeconfig") << podlb::sandbox::MakeKubeconfig(server.url(), server.ca_pem(), "bench-token");
  auto config = podlb::LoadKubeconfig(dir + "/kubeconfig");
  if (!config.ok()) return 1;

  podlb::Registry registry;
  absl::Mutex mu;
  std::map<std::string, Clock::time_point> notified;  // service name → last notification
  uint64_t notifications = 0;
  auto subscription = registry.SubscribeAll([&](const podlb::ServiceKey& key, const podlb::EndpointSetConstSharedPtr&) {
    if (key.port != "grpc") return;
    absl::MutexLock lock(&mu);
    notified[key.name] = Clock::now();
    ++notifications;
  });
  podlb::KubernetesSource source(*config, podlb::KubernetesSourceOptions{.ns = "default"}, registry);
  auto start = Clock::now();
  if (!source.Start().ok()) return 1;
  {
    absl::MutexLock lock(&mu);
    auto all = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return notified.size() == size_t(services); };
    mu.AwaitWithTimeout(absl::Condition(&all), absl::Seconds(120));
  }
  double sync_ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  rows.push_back({fmt::format("initial list + publish, {} services x {} endpoints (TLS)", services, endpoints),
                  fmt::format("{:.0f} ms", sync_ms)});

  // 4. Change → notification latency. Each change rewrites one slice (conditions flip).
  std::vector<double> latencies_ms;
  for (int c = 1; c <= changes; ++c) {
    std::string name = fmt::format("svc-{}", (c * 7919) % services);
    uint64_t seen;
    {
      absl::MutexLock lock(&mu);
      seen = notifications;
    }
    auto t0 = Clock::now();
    (void)store->Update("endpointslices", "default", MakeSlice(name, (c * 7919) % services, endpoints, c));
    absl::MutexLock lock(&mu);
    auto arrived = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return notifications > seen; };
    if (!mu.AwaitWithTimeout(absl::Condition(&arrived), absl::Seconds(5))) continue;
    latencies_ms.push_back(std::chrono::duration<double, std::milli>(notified[name] - t0).count());
  }
  rows.push_back({fmt::format("change -> subscriber notified ({} changes)", latencies_ms.size()),
                  fmt::format("p50 {:.2f} ms, p99 {:.2f} ms", Percentile(latencies_ms, 0.5), Percentile(latencies_ms, 0.99))});
  rows.push_back({fmt::format("watches opened for {} services", services),
                  fmt::format("endpointslices {}, services {}", server.WatchesOpened("endpointslices"),
                              server.WatchesOpened("services"))});
  rows.push_back({"lists served (no relist on a timer)",
                  fmt::format("endpointslices {}, services {}", server.ListsServed("endpointslices"),
                              server.ListsServed("services"))});
  rows.push_back({"watch timeoutSeconds requested", "300-600 s (300 with jitter)"});
  source.Stop();
  server.Stop();

  size_t width = 0;
  for (const auto& [k, v] : rows) width = std::max(width, k.size());
  printf("%-*s  %s\n", int(width), "measure", "result");
  printf("%s  %s\n", std::string(width, '-').c_str(), std::string(40, '-').c_str());
  for (const auto& [k, v] : rows) printf("%-*s  %s\n", int(width), k.c_str(), v.c_str());
  return 0;
}
