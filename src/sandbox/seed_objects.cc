#include "sandbox/seed_objects.h"

namespace podlb::sandbox {

using json = nlohmann::json;

json GreeterDeployment(int replicas, uint16_t port) {
  json labels = {{"app", "greeter"}};
  return {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata", {{"name", "greeter"}, {"namespace", "default"}, {"labels", labels}}},
      {"spec",
       {{"replicas", replicas},
        {"selector", {{"matchLabels", labels}}},
        {"strategy",
         {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", 1}, {"maxUnavailable", 0}}}}},
        {"template",
         {{"metadata", {{"labels", labels}}},
          {"spec",
           {{"containers",
             json::array({{{"name", "greeter"},
                           {"image", "podlb/backend-pod"},
                           {"ports", json::array({{{"name", "grpc"},
                                                   {"containerPort", port},
                                                   {"protocol", "TCP"}}})},
                           {"readinessProbe", {{"grpc", {{"port", port}}}}}}})}}}}}}}};
}

json GreeterService(uint16_t port) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata",
           {{"name", "greeter"}, {"namespace", "default"}, {"labels", {{"app", "greeter"}}}}},
          {"spec",
           {{"type", "ClusterIP"},
            {"selector", {{"app", "greeter"}}},
            {"ports", json::array({{{"name", "grpc"},
                                    {"port", 50051},
                                    {"targetPort", port},
                                    {"protocol", "TCP"},
                                    {"appProtocol", "grpc"}}})}}}};
}

}  // namespace podlb::sandbox
