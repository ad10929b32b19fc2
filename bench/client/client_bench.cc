// libpodlb benchmarks. The backend pods run in a forked child process, so process CPU time
// measured here is the client's alone: the difference between a podlb channel and a plain
// grpc++ channel to the same pod is the CPU podlb adds per call. Also: memory per endpoint, and
// connections kept across a change for LbChannel vs a rebuilt round_robin channel.
//   build-client/bench/client/client_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <malloc.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "client/lb_channel.h"
#include "core/host_port.h"
#include "grpc/testing/test.grpc.pb.h"
#include "rebuilt_channel.h"
#include "sandbox/pods/backend_pod.h"

namespace podlb {
namespace {

constexpr int kCallPods = 3;
constexpr int kMemoryPods = 48;

// Pods in the child process: the first kCallPods for call benchmarks, then kMemoryPods more.
std::vector<std::string> g_pods;  // "ip:port", filled once in main before any benchmark runs

Endpoint EndpointAt(const std::string& host_port) {
  HostPort parsed = *ParseHostPort(host_port);  // the child printed them: well-formed
  return Endpoint{.address = parsed.host,
                  .port = parsed.port,
                  .ready = true,
                  .serving = true};
}

void Call(grpc::testing::TestService::Stub& stub, benchmark::State& state) {
  grpc::ClientContext context;
  grpc::testing::Empty request, response;
  grpc::Status status = stub.EmptyCall(&context, request, &response);
  if (!status.ok()) state.SkipWithError(status.error_message().c_str());
}

void BM_PlainChannel(benchmark::State& state) {
  auto channel = grpc::CreateChannel("ipv4:" + g_pods[0], grpc::InsecureChannelCredentials());
  auto stub = grpc::testing::TestService::NewStub(channel);
  Call(*stub, state);  // connect outside the timed loop
  for (auto _ : state) Call(*stub, state);
}
BENCHMARK(BM_PlainChannel)->MeasureProcessCPUTime()->UseRealTime();

// The library's policies by number, as the benchmarks' arguments name them.
LbPolicy PolicyArg(int64_t n) {
  switch (n) {
    case 0: return LbPolicy::kRoundRobin;
    case 1: return LbPolicy::kLeastRequest;
    default: return LbPolicy::kPeakEwma;
  }
}

// Round robin without ejection needs no call results: the cheapest podlb channel.
client::LbChannelOptions PlainRoundRobin() {
  return {.defaults = client::LibraryDefaults(LbPolicy::kRoundRobin, /*outlier_detection=*/false)};
}

// range(0): endpoints; range(1): 0 round robin, 1 least_request, 2 peak_ewma (the last two with
// outlier ejection, as by default: both record each call's result through the interceptor).
void BM_PodlbChannel(benchmark::State& state) {
  Registry registry;
  const ServiceKey key{"default", "greeter", "grpc"};
  std::vector<Endpoint> endpoints;
  for (int i = 0; i < state.range(0); ++i) endpoints.push_back(EndpointAt(g_pods[i]));
  registry.Publish({key}, endpoints);
  auto channel = client::LbChannel::Create(
      registry, key,
      state.range(1) == 0 ? PlainRoundRobin()
                          : client::LbChannelOptions{
                                .defaults = client::LibraryDefaults(PolicyArg(state.range(1)))});
  auto stub = grpc::testing::TestService::NewStub(channel);
  for (int i = 0; i < state.range(0); ++i) Call(*stub, state);
  for (auto _ : state) Call(*stub, state);
}
BENCHMARK(BM_PodlbChannel)
    ->ArgsProduct({{1, kCallPods}, {0, 1, 2}})
    ->ArgNames({"endpoints", "policy"})
    ->MeasureProcessCPUTime()
    ->UseRealTime();

// What podlb adds to a call happens when the call is created (the pick, the endpoint's
// registered method, the in-flight guard) and when its ClientContext is destroyed; the rest of
// the call is the endpoint's own grpc::Channel. This times exactly that part, without the
// network: create a call (not started) and destroy it. range(0): 0 plain channel; podlb with
// 1 round robin (no call tracking), 2 least_request without ejection (the in-flight guard),
// 3 least_request with ejection and 4 peak_ewma (the call-result interceptor, the default).
// Far less noisy than the end-to-end call above.
void BM_CallSetup(benchmark::State& state) {
  Registry registry;
  const ServiceKey key{"default", "greeter", "grpc"};
  std::shared_ptr<grpc::ChannelInterface> channel;
  if (state.range(0) == 0) {
    channel = grpc::CreateChannel("ipv4:" + g_pods[0], grpc::InsecureChannelCredentials());
  } else {
    std::vector<Endpoint> endpoints;
    for (int i = 0; i < kCallPods; ++i) endpoints.push_back(EndpointAt(g_pods[i]));
    registry.Publish({key}, endpoints);
    client::LbChannelOptions options = PlainRoundRobin();
    if (state.range(0) == 2)
      options.defaults = client::LibraryDefaults(LbPolicy::kLeastRequest, false);
    if (state.range(0) == 3) options.defaults = client::LibraryDefaults(LbPolicy::kLeastRequest);
    if (state.range(0) == 4) options.defaults = client::LibraryDefaults(LbPolicy::kPeakEwma);
    channel = client::LbChannel::Create(registry, key, options);
  }
  auto stub = grpc::testing::TestService::NewStub(channel);
  for (int i = 0; i < kCallPods; ++i) Call(*stub, state);  // connect every endpoint
  grpc::CompletionQueue cq;
  for (auto _ : state) {
    // A stream, not a unary call: an unstarted unary call would leak its serialized request.
    grpc::ClientContext context;
    auto stream = stub->PrepareAsyncFullDuplexCall(&context, &cq);
    benchmark::DoNotOptimize(stream.get());
  }
}
BENCHMARK(BM_CallSetup)
    ->DenseRange(0, 4)
    ->ArgName("channel")
    ->MeasureProcessCPUTime()
    ->UseRealTime();

void BM_RebuiltRoundRobinChannel(benchmark::State& state) {
  auto channel = std::make_shared<bench::RebuiltChannel>();
  channel->Update({g_pods.begin(), g_pods.begin() + state.range(0)});
  auto stub = grpc::testing::TestService::NewStub(channel);
  for (auto _ : state) Call(*stub, state);
}
BENCHMARK(BM_RebuiltRoundRobinChannel)
    ->Arg(1)
    ->Arg(kCallPods)
    ->ArgName("endpoints")
    ->MeasureProcessCPUTime()
    ->UseRealTime();

// The pick alone is measured by bench/balancing (every policy, 3 to 5,000 endpoints).

// Heap held per connected endpoint (channel, subchannel, HTTP/2 transport), client side only.
void BM_MemoryPerEndpoint(benchmark::State& state) {
  for (auto _ : state) {
    Registry registry;
    const ServiceKey key{"default", "memory", "grpc"};
    std::vector<Endpoint> endpoints;
    for (int i = 0; i < kMemoryPods; ++i) endpoints.push_back(EndpointAt(g_pods[kCallPods + i]));
    const size_t before = mallinfo2().uordblks;
    auto channel = client::LbChannel::Create(registry, key, PlainRoundRobin());
    registry.Publish({key}, endpoints);
    auto stub = grpc::testing::TestService::NewStub(channel);
    for (int i = 0; i < kMemoryPods; ++i) Call(*stub, state);  // one call each: all connected
    const size_t after = mallinfo2().uordblks;
    state.counters["bytes_per_endpoint"] =
        static_cast<double>(after - before) / static_cast<double>(kMemoryPods);
  }
}
BENCHMARK(BM_MemoryPerEndpoint)->Iterations(1);

// Connections opened to pods that stay when one pod of three is replaced. In-process pods here:
// the count is read at the servers.
void BM_ConnectionsAcrossChange(benchmark::State& state) {
  const bool rebuilt = state.range(0) == 1;
  for (auto _ : state) {
    std::vector<std::unique_ptr<sandbox::BackendPod>> pods;
    for (int i = 0; i < 4; ++i) {
      pods.push_back(std::make_unique<sandbox::BackendPod>(sandbox::BackendPodOptions{
          .name = "p" + std::to_string(i), .ip = "127.0.1." + std::to_string(2 + i)}));
      if (!pods.back()->Start().ok()) state.SkipWithError("pod did not start");
    }
    auto addresses = [&](int first) {
      std::vector<std::string> out;
      for (int i = first; i < first + 3; ++i) out.push_back(pods[i]->address());
      return out;
    };
    Registry registry;
    const ServiceKey key{"default", "change", "grpc"};
    auto publish = [&](int first) {
      std::vector<Endpoint> endpoints;
      for (const auto& a : addresses(first)) endpoints.push_back(EndpointAt(a));
      registry.Publish({key}, endpoints);
    };
    std::shared_ptr<grpc::ChannelInterface> channel;
    std::shared_ptr<bench::RebuiltChannel> rebuilt_channel;
    if (rebuilt) {
      rebuilt_channel = std::make_shared<bench::RebuiltChannel>();
      rebuilt_channel->Update(addresses(0));
      channel = rebuilt_channel;
    } else {
      publish(0);
      channel = client::LbChannel::Create(registry, key, PlainRoundRobin());
    }
    auto stub = grpc::testing::TestService::NewStub(channel);
    for (int i = 0; i < 30; ++i) Call(*stub, state);
    const uint64_t before = pods[1]->connections_accepted() + pods[2]->connections_accepted();
    if (rebuilt) {
      rebuilt_channel->Update(addresses(1));  // p0 replaced by p3
    } else {
      publish(1);
    }
    for (int i = 0; i < 30; ++i) Call(*stub, state);
    const uint64_t after = pods[1]->connections_accepted() + pods[2]->connections_accepted();
    state.counters["new_connections_to_unchanged_pods"] = static_cast<double>(after - before);
    state.counters["calls_on_new_pod"] = static_cast<double>(pods[3]->calls_served());
    for (auto& pod : pods) pod->Shutdown(std::chrono::milliseconds(0));
  }
}
BENCHMARK(BM_ConnectionsAcrossChange)->Arg(0)->Arg(1)->ArgName("rebuilt")->Iterations(1);

// Child: starts the pods, writes "ip:port" lines to `out`, serves until `in` reaches EOF.
[[noreturn]] void RunPods(int out, int in) {
  std::vector<std::unique_ptr<sandbox::BackendPod>> pods;
  std::string lines;
  for (int i = 0; i < kCallPods + kMemoryPods; ++i) {
    pods.push_back(std::make_unique<sandbox::BackendPod>(sandbox::BackendPodOptions{
        .name = "pod-" + std::to_string(i), .ip = "127.0.0." + std::to_string(2 + i)}));
    if (!pods.back()->Start().ok()) _exit(1);
    lines += pods.back()->address() + "\n";
  }
  lines += "end\n";
  if (write(out, lines.data(), lines.size()) != static_cast<ssize_t>(lines.size())) _exit(1);
  close(out);
  char byte;
  while (read(in, &byte, 1) > 0) {
  }
  _exit(0);  // pods die with the process; no orderly shutdown needed
}

}  // namespace
}  // namespace podlb

int main(int argc, char** argv) {
  // Fork before anything touches gRPC in this process.
  int to_parent[2], to_child[2];
  if (pipe(to_parent) != 0 || pipe(to_child) != 0) return 1;
  pid_t child = fork();
  if (child == 0) {
    close(to_parent[0]);
    close(to_child[1]);
    podlb::RunPods(to_parent[1], to_child[0]);
  }
  close(to_parent[1]);
  close(to_child[0]);
  FILE* in = fdopen(to_parent[0], "r");
  char line[128];
  while (fgets(line, sizeof line, in) != nullptr) {
    std::string s(line);
    s.erase(s.find_last_not_of("\n") + 1);
    if (s == "end") break;
    podlb::g_pods.push_back(s);
  }
  if (podlb::g_pods.size() != podlb::kCallPods + podlb::kMemoryPods) {
    fprintf(stderr, "the pod process failed to start its pods\n");
    return 1;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  close(to_child[1]);  // EOF: the pod process exits
  waitpid(child, nullptr, 0);
  return 0;
}
