// Parsing of the static endpoints file (YAML, or JSON since YAML is a superset). Pure functions:
// callable from any thread.
//
//   services:
//     - service: default/greeter:grpc          # ServiceKey, any form ServiceKey::Parse accepts
//       aliases: [default/greeter:50051]       # optional: more keys for the same endpoints
//       annotations: {podlb.io/lb-policy: round_robin}   # optional
//       endpoints:
//         - {address: 127.0.0.2, port: 50051, pod: greeter-a, node: node-a, zone: z1,
//            ready: true, serving: true, terminating: false, weight: 1}
//
// ready defaults to true, serving to ready, terminating to false, weight to 1.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/endpoint.h"

namespace podlb {

struct FileService {
  std::vector<ServiceKey> keys;  // keys[0] is the canonical one
  std::map<std::string, std::string> annotations;
  std::vector<Endpoint> endpoints;
};

// `origin` names the file in error messages.
absl::StatusOr<std::vector<FileService>> ParseEndpointsFile(const std::string& content,
                                                            const std::string& origin);

}  // namespace podlb
