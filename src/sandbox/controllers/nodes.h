// The sandbox's simulated nodes: the DeploymentController schedules pods onto them (nodeName)
// and the EndpointSliceController reads their zone, as it would from Node objects.
// Immutable after construction; any thread.
#pragma once

#include <string>
#include <vector>

namespace podlb::sandbox {

struct NodeInfo {
  std::string name;
  std::string zone;
};

inline std::vector<NodeInfo> DefaultNodes() {
  return {{"node-a", "zone-a"}, {"node-b", "zone-b"}, {"node-c", "zone-c"}};
}

inline std::string ZoneOfNode(const std::vector<NodeInfo>& nodes, const std::string& node) {
  for (const auto& n : nodes) {
    if (n.name == node) return n.zone;
  }
  return "";
}

}  // namespace podlb::sandbox
