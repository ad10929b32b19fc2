// The sandbox's simulated nodes: the workload controllers schedule pods onto them (nodeName)
// and the EndpointSliceController reads their zone, as it would from Node objects.
// Immutable after construction; any thread.
#pragma once

#include <map>
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

// The well-known labels of a node (its Node object's metadata.labels): what a DaemonSet's
// nodeSelector matches.
inline std::map<std::string, std::string> NodeLabels(const NodeInfo& node) {
  return {{"kubernetes.io/hostname", node.name},
          {"kubernetes.io/os", "linux"},
          {"kubernetes.io/arch", "amd64"},
          {"topology.kubernetes.io/zone", node.zone}};
}

inline std::string ZoneOfNode(const std::vector<NodeInfo>& nodes, const std::string& node) {
  for (const auto& n : nodes) {
    if (n.name == node) return n.zone;
  }
  return "";
}

}  // namespace podlb::sandbox
