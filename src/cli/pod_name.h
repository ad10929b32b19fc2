// The name a podlb process goes by when no flag gives one: the pod's, as Kubernetes shows it.
#pragma once

#include <string>

namespace podlb::cli {

// $POD_NAME (the downward API), else the hostname (a pod's hostname is its name), else `fallback`.
std::string PodName(const std::string& fallback);

}  // namespace podlb::cli
