#include "core/pod_identity.h"

#include <unistd.h>

#include <cstdlib>

namespace podlb {

std::string PodNameOrHostname(const std::string& fallback) {
  for (const char* name : {"POD_NAME", "HOSTNAME"}) {
    if (const char* value = std::getenv(name); value != nullptr && *value != '\0') return value;
  }
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0') return host;
  return fallback;
}

}  // namespace podlb
