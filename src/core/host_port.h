// HOST:PORT text, the one parser and printer for every address podlb reads from flags, targets
// and configuration: "10.0.0.7:8080", "greeter.default:50051", "[::1]:9901" (an IPv6 literal
// in brackets, as URLs and gRPC targets write it). Pure; any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace podlb {

struct HostPort {
  std::string host;  // without the brackets of an IPv6 literal
  uint16_t port = 0;
};

// Splits HOST:PORT. The port is a decimal number from 0 to 65535 (0: "any free port", for the
// callers that bind). Errors say what is wrong and how to write it, e.g.
//   `"::1:80": an IPv6 address goes in brackets: [::1]:80`.
absl::StatusOr<HostPort> ParseHostPort(std::string_view text);

// The inverse: "host:port", or "[host]:port" when `host` is an IPv6 literal.
std::string FormatHostPort(std::string_view host, uint16_t port);

}  // namespace podlb
