// The name this process goes by among its peers: the identity a control plane sees as its node
// id and subsetting numbers clients by. Read from the environment, so only edges call it (cli/
// and the library's CreateChannel), once, at start-up; any thread.
#pragma once

#include <string>

namespace podlb {

// $POD_NAME (set from the downward API in podlb's manifests), else $HOSTNAME (a pod's hostname
// is its name), else gethostname(); `fallback` when all are empty.
std::string PodNameOrHostname(const std::string& fallback);

}  // namespace podlb
