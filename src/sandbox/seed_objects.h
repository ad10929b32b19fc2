// The objects the sandbox seeds: Deployment default/greeter and Service default/greeter
// (selector app=greeter, port "grpc" 50051 → targetPort = the pods' port), and the Node objects
// of the simulated nodes (nodes.h). Pure functions;
// any thread. Tests that assemble their own stand-in use them too.
#pragma once

#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"
#include "sandbox/controllers/nodes.h"

namespace podlb::sandbox {

nlohmann::json GreeterDeployment(int replicas, uint16_t port);
nlohmann::json GreeterService(uint16_t port);

// The image of the sandbox's own gRPC backend pods: RoutingPodRuntime runs it in-process.
inline constexpr char kBackendPodImage[] = "podlb/backend-pod";

// A Ready core/v1 Node with the well-known labels (kubernetes.io/hostname, kubernetes.io/os,
// topology.kubernetes.io/zone) that `kubectl get nodes` and a DaemonSet read.
nlohmann::json NodeObject(const NodeInfo& node);

}  // namespace podlb::sandbox
