// The objects the sandbox seeds: Deployment default/greeter and Service default/greeter
// (selector app=greeter, port "grpc" 50051 → targetPort = the pods' port). Pure functions;
// any thread. Tests that assemble their own stand-in use them too.
#pragma once

#include <cstdint>

#include "nlohmann/json.hpp"

namespace podlb::sandbox {

nlohmann::json GreeterDeployment(int replicas, uint16_t port);
nlohmann::json GreeterService(uint16_t port);

}  // namespace podlb::sandbox
