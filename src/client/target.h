// Parsing of the targets podlb::CreateChannel accepts (kubernetes:///, dns:///, file:///) into
// which source to run and which ServiceKey to follow. Pure functions: any thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "core/endpoint.h"

namespace podlb::client {

struct ParsedTarget {
  enum class Scheme { kKubernetes, kDns, kFile };
  Scheme scheme;
  ServiceKey key;    // what the channel follows in its registry
  std::string host;  // dns: the name to resolve
  uint16_t port = 0; // dns: the port every address gets
  std::string path;  // file: the endpoints file
};

absl::StatusOr<ParsedTarget> ParseTarget(const std::string& target,
                                         const std::string& default_namespace);

}  // namespace podlb::client
