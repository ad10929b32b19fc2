#include "cli/pod_name.h"

#include <unistd.h>

#include <cstdlib>

namespace podlb::cli {

std::string PodName(const std::string& fallback) {
  if (const char* pod = std::getenv("POD_NAME"); pod != nullptr && *pod != '\0') return pod;
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0') return host;
  return fallback;
}

}  // namespace podlb::cli
