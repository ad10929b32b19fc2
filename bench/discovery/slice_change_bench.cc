// The discovery core's cost of one EndpointSlice change as a function of the Service's size:
// the watch event line decoded, the slice replaced in its ServiceState, the Service's slices
// merged into one endpoint list, and the EndpointSet published (sorted, de-duplicated, compared
// with the current one) into a Registry with one subscriber. Each change replaces one pod of
// one slice (new name and address), as a rolling replacement does; slices of 100 endpoints,
// the EndpointSlice controller's default. Prints time per change at each size and the ratio to
// the smallest (issue #12: 5,000 vs 50 endpoints must stay within 100x, the ratio of sizes).
//   slice_change_bench [--sizes 50,500,5000] [--changes 2000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "core/registry.h"
#include "discovery/kubernetes/endpoint_slice_decoder.h"
#include "discovery/kubernetes/service_state.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
constexpr int kSliceSize = 100;

// Slice `index` of a Service of `total` endpoints; endpoint i's pod has generation gens[i].
std::string SliceEvent(int index, int total, const std::vector<int>& gens) {
  int first = index * kSliceSize;
  int last = std::min(total, first + kSliceSize);
  json eps = json::array();
  for (int i = first; i < last; ++i) {
    int g = gens[i];
    // A replaced pod gets a new address: the generation moves it through 10.64+g.x.y.
    eps.push_back({{"addresses", {fmt::format("10.{}.{}.{}", 64 + g % 128, i / 250, i % 250 + 1)}},
                   {"conditions", {{"ready", true}, {"serving", true}, {"terminating", false}}},
                   {"nodeName", fmt::format("node-{}", i % 3)},
                   {"zone", fmt::format("zone-{}", i % 3)},
                   {"targetRef", {{"kind", "Pod"}, {"name", fmt::format("big-{}-g{}", i, g)},
                                  {"namespace", "default"}}}});
  }
  json slice = {{"apiVersion", "discovery.k8s.io/v1"},
                {"kind", "EndpointSlice"},
                {"metadata",
                 {{"name", fmt::format("big-{:05d}", index)},
                  {"namespace", "default"},
                  {"resourceVersion", "1"},
                  {"labels", {{"kubernetes.io/service-name", "big"}}}}},
                {"addressType", "IPv4"},
                {"ports", {{{"name", "grpc"}, {"port", 50051}, {"protocol", "TCP"}}}},
                {"endpoints", eps}};
  return json{{"type", "MODIFIED"}, {"object", slice}}.dump();
}

struct Result {
  int endpoints;
  int slices;
  double us_per_change;
};

Result Measure(int total, int changes) {
  const int slices = (total + kSliceSize - 1) / kSliceSize;
  std::vector<int> gens(total, 0);
  podlb::Registry registry;
  size_t notified = 0;
  auto subscription = registry.SubscribeAll(
      [&](const podlb::ServiceKey&, const podlb::EndpointSetConstSharedPtr&) { ++notified; });
  podlb::ServiceState state("default", "big");
  podlb::Service service;
  service.ns = "default";
  service.name = "big";
  service.ports.push_back({.name = "grpc", .port = 50051});
  state.SetService(service);
  auto apply = [&](const std::string& line) {
    auto event = podlb::DecodeWatchEvent(line, "endpointslices");
    auto slice = podlb::DecodeEndpointSlice(event->object);
    state.UpsertSlice(std::move(*slice));
    for (podlb::Publication& pub : state.TakePublications()) {
      registry.Publish(pub.keys, std::move(pub.endpoints), std::move(pub.annotations));
    }
  };
  for (int s = 0; s < slices; ++s) apply(SliceEvent(s, total, gens));
  // The events are prepared beforehand: the API server's encoding is not the core's cost.
  std::vector<std::string> lines;
  lines.reserve(changes);
  for (int k = 0; k < changes; ++k) {
    int pod = static_cast<int>((static_cast<int64_t>(k) * 7919) % total);
    ++gens[pod];
    lines.push_back(SliceEvent(pod / kSliceSize, total, gens));
  }
  size_t before = notified;
  auto start = Clock::now();
  for (const std::string& line : lines) apply(line);
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  if (notified - before != static_cast<size_t>(changes) * 2) {  // two keys: port name and number
    std::fprintf(stderr, "slice_change_bench: %zu notifications for %d changes\n",
                 notified - before, changes);
  }
  return {total, slices, seconds * 1e6 / changes};
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<int> sizes = {50, 500, 5000};
  int changes = 2000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--sizes") {
      sizes.clear();
      for (auto part : absl::StrSplit(argv[i + 1], ',')) {
        int n = 0;
        if (!absl::SimpleAtoi(part, &n) || n < 1) {
          std::fprintf(stderr, "slice_change_bench: --sizes wants numbers >= 1\n");
          return 2;
        }
        sizes.push_back(n);
      }
    } else if (flag == "--changes") {
      if (!absl::SimpleAtoi(argv[i + 1], &changes) || changes < 1) return 2;
    } else {
      std::fprintf(stderr, "slice_change_bench: unknown flag %s\n", flag.c_str());
      return 2;
    }
  }
  std::vector<Result> results;
  for (int n : sizes) results.push_back(Measure(n, changes));
  std::printf("| Service endpoints | slices | discovery core time per slice change | ratio to %d "
              "endpoints | size ratio |\n|---|---|---|---|---|\n",
              results.front().endpoints);
  for (const Result& r : results) {
    std::printf("| %d | %d | %.1f us | %.1fx | %.0fx |\n", r.endpoints, r.slices, r.us_per_change,
                r.us_per_change / results.front().us_per_change,
                static_cast<double>(r.endpoints) / results.front().endpoints);
  }
  return 0;
}
