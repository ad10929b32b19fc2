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
                           {"image", kBackendPodImage},
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

json NodeObject(const NodeInfo& node) {
  json capacity = {{"cpu", "2"}, {"memory", "4Gi"}, {"pods", "110"}};
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", node.name}, {"labels", NodeLabels(node)}}},
          {"spec", json::object()},
          {"status",
           {{"capacity", capacity},
            {"allocatable", capacity},
            {"conditions",
             json::array({{{"type", "Ready"},
                           {"status", "True"},
                           {"reason", "KubeletReady"},
                           {"message", "the sandbox runs this node's pods as local processes"}}})},
            {"addresses", json::array({{{"type", "Hostname"}, {"address", node.name}},
                                       {{"type", "InternalIP"}, {"address", "127.0.0.1"}}})},
            {"nodeInfo",
             {{"kubeletVersion", "v1.32.0-podlb-sandbox"},
              {"operatingSystem", "linux"},
              {"architecture", "amd64"},
              {"containerRuntimeVersion", "podlb-sandbox://1"},
              {"osImage", "podlb sandbox"},
              {"kernelVersion", ""}}}}}};
}

}  // namespace podlb::sandbox
