// What the file source pays per change of an endpoints file: ParseEndpointsFile of S Services x
// 10 endpoints, the same content written as JSON (nlohmann) and as block YAML (yaml-cpp).
// xds_fanout's "file source alone, CPU per change" is this plus a read and 100 Publishes.
//   build/bench/discovery/endpoints_file_bench --benchmark_repetitions=3
//       --benchmark_report_aggregates_only=true
#include <string>

#include "absl/strings/str_cat.h"
#include "benchmark/benchmark.h"
#include "discovery/file/endpoints_file.h"

namespace podlb {
namespace {

constexpr int kEndpoints = 10;

// As bench/xds/xds_fanout writes it.
std::string JsonFile(int services) {
  std::string out = "{\"services\": [\n";
  for (int s = 0; s < services; ++s) {
    absl::StrAppend(&out, s ? ",\n" : "", "{\"service\": \"svc", s,
                    ".default:80\", \"endpoints\": [");
    for (int j = 0; j < kEndpoints; ++j) {
      absl::StrAppend(&out, j ? ", " : "", "{\"address\": \"10.", s / 256, ".", s % 256, ".", j + 1,
                      "\", \"port\": 1000, \"pod\": \"svc", s, "-", j, "\"}");
    }
    out += "]}";
  }
  return out + "\n]}\n";
}

std::string YamlFile(int services) {
  std::string out = "services:\n";
  for (int s = 0; s < services; ++s) {
    absl::StrAppend(&out, "  - service: svc", s, ".default:80\n    endpoints:\n");
    for (int j = 0; j < kEndpoints; ++j) {
      absl::StrAppend(&out, "      - address: 10.", s / 256, ".", s % 256, ".", j + 1,
                      "\n        port: 1000\n        pod: svc", s, "-", j, "\n");
    }
  }
  return out;
}

void Run(benchmark::State& state, const std::string& content) {
  for (auto _ : state) {
    auto services = ParseEndpointsFile(content, "bench");
    if (!services.ok()) state.SkipWithError(std::string(services.status().message()).c_str());
    benchmark::DoNotOptimize(services);
  }
  state.counters["bytes"] = static_cast<double>(content.size());
  state.counters["endpoints"] = benchmark::Counter(static_cast<double>(state.range(0) * kEndpoints),
                                                   benchmark::Counter::kIsIterationInvariantRate);
}

void BM_ParseJson(benchmark::State& state) {
  Run(state, JsonFile(static_cast<int>(state.range(0))));
}
void BM_ParseYaml(benchmark::State& state) {
  Run(state, YamlFile(static_cast<int>(state.range(0))));
}

BENCHMARK(BM_ParseJson)->Arg(100)->Arg(500)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ParseYaml)->Arg(100)->Arg(500)->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace podlb

BENCHMARK_MAIN();
