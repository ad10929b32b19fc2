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
// ready defaults to true, serving to ready, terminating to false, weight to 1; a field given as
// null (`~`, or no value) counts as absent. Scalars are read as yaml-cpp reads them in either
// syntax ("50051" is a port, yes/on are true). Content that is JSON goes through a JSON parser
// (~10x faster than yaml-cpp, and the file source parses the whole file on every change; see
// bench/discovery/endpoints_file_bench); anything else, a YAML flow mapping such as
// `{services: []}` included, through yaml-cpp.
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
