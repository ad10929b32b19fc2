#include "cli/endpoint_printer.h"

#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace podlb::cli {

std::string FormatEndpointTable(const EndpointSet& set) {
  std::string out = fmt::format(
      "{}  version {}  {} eligible, {} draining, {} excluded\n", set.key().ToString(),
      set.version(), set.CountWithHealth(EndpointHealth::kEligible),
      set.CountWithHealth(EndpointHealth::kDraining), set.CountWithHealth(EndpointHealth::kExcluded));
  out += fmt::format("  {:<24} {:<32} {:<10} {:<10} {}\n", "ENDPOINT", "POD", "NODE", "ZONE", "STATE");
  for (const auto& e : set.endpoints()) {
    out += fmt::format("  {:<24} {:<32} {:<10} {:<10} {}\n", e.HostPort(),
                       e.pod_name.empty() ? "-" : e.pod_name, e.node_name.empty() ? "-" : e.node_name,
                       e.zone.empty() ? "-" : e.zone, ToString(e.Health()));
  }
  return out;
}

std::string FormatEndpointJson(const EndpointSet& set) {
  nlohmann::json endpoints = nlohmann::json::array();
  for (const auto& e : set.endpoints()) {
    endpoints.push_back({{"address", e.address},
                         {"port", e.port},
                         {"pod", e.pod_name},
                         {"node", e.node_name},
                         {"zone", e.zone},
                         {"ready", e.ready},
                         {"serving", e.serving},
                         {"terminating", e.terminating},
                         {"weight", e.weight},
                         {"health", std::string(ToString(e.Health()))}});
  }
  nlohmann::json doc = {{"service", set.key().ToString()},
                        {"version", set.version()},
                        {"eligible", set.CountWithHealth(EndpointHealth::kEligible)},
                        {"endpoints", std::move(endpoints)}};
  return doc.dump();
}

}  // namespace podlb::cli
