// ContainerPlan: what the sandbox's kubelet runs for one container of a pod of podlb's image,
// read from the Pod object as a kubelet reads it: the arguments after the image's entrypoint
// (`/podlb`) with $(VAR) references expanded, the environment (literal values, the downward
// API's fieldRef and resourceFieldRef, ConfigMap keys), and the readiness and liveness probes with
// named ports resolved. Pure functions of the Pod and the store: no processes, no sockets.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

struct ProbeSpec {
  enum class Kind { kHttpGet, kTcpSocket };
  Kind kind = Kind::kHttpGet;
  std::string path = "/";  // httpGet
  uint16_t port = 0;
  // The fields' Kubernetes defaults.
  std::chrono::milliseconds initial_delay{0};
  std::chrono::milliseconds period{10000};
  std::chrono::milliseconds timeout{1000};
  int success_threshold = 1;
  int failure_threshold = 3;
};

struct ContainerPlan {
  std::string name;
  // After the entrypoint: {"control-plane", "--listen", "127.0.0.5:18000", ...}.
  std::vector<std::string> args;
  // NAME=VALUE, the container's own variables in their order (later ones may refer to earlier).
  std::vector<std::string> env;
  std::optional<ProbeSpec> readiness;
  std::optional<ProbeSpec> liveness;
};

// Kubernetes' $(VAR) expansion (container args, command and env values): $(NAME) becomes the
// variable's value when NAME is defined, and stays as written otherwise; $$ is a literal $.
std::string ExpandKubernetesVariables(std::string_view text,
                                      const std::map<std::string, std::string>& vars);

// The plan of container `container` of `pod` (its spec and status.podIP as stored). `store`
// answers configMapKeyRef. Errors name the field, as the API server or kubelet would: an unknown
// fieldPath, a missing ConfigMap key that is not optional, an exec probe (no shell in the image),
// a command that is not the image's entrypoint.
absl::StatusOr<ContainerPlan> PlanContainer(const nlohmann::json& pod,
                                            const nlohmann::json& container,
                                            ResourceStore& store);

}  // namespace podlb::sandbox
