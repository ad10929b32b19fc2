// Candidate: one endpoint as a picker sees it (src/balancing/picker.h).
#pragma once

#include <cstdint>
#include <string_view>

#include "balancing/endpoint_stats.h"

namespace podlb::balancing {

// One endpoint a picker may choose. `index` is the endpoint's position in the Balancer's
// EndpointTable (what the adapter maps to its connection); `key` identifies the pod stably
// across tables (ring positions hash it).
struct Candidate {
  uint32_t index = 0;
  uint32_t weight = 1;
  EndpointStats* stats = nullptr;  // owned by the table, which outlives the picker
  std::string_view key;            // "host:port", owned by the table
};

}  // namespace podlb::balancing
