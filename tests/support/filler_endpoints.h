// Endpoints that make a Service big without serving anything: terminating pods on addresses
// nobody listens on, for tests of what a 5,000-endpoint slice change costs the pods that stay.
#pragma once

#include <string>
#include <vector>

#include "core/endpoint.h"

namespace podlb::testing {

// `count` draining endpoints other-<first>..other-<first+count-1> on 127.254.x.y:1.
inline std::vector<Endpoint> DrainingFillerEndpoints(int first, int count) {
  std::vector<Endpoint> endpoints;
  endpoints.reserve(count);
  for (int i = first; i < first + count; ++i) {
    endpoints.push_back(Endpoint{.address = "127.254." + std::to_string(i / 250) + "." +
                                            std::to_string(1 + i % 250),
                                 .port = 1,
                                 .pod_name = "other-" + std::to_string(i),
                                 .ready = false,
                                 .serving = true,
                                 .terminating = true});
  }
  return endpoints;
}

}  // namespace podlb::testing
