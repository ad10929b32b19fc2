// Listening sockets for servers that run one event loop per worker: every worker binds its own
// socket to the same address with SO_REUSEPORT, and the kernel spreads new connections over
// them, so accepting needs no hand-off between threads. Any thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace podlb::h2 {

// A non-blocking listening socket on host:port (port 0: any free port). Errors name `what` (the
// option the address came from) and say why, e.g. "address already in use".
absl::StatusOr<int> BindReusePortListener(const std::string& host, uint16_t port,
                                          const std::string& what);

// The port a bound socket got (for port 0, so the other workers join the same one).
uint16_t BoundPort(int fd);

}  // namespace podlb::h2
