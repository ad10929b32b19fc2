// The resource types the API-server stand-in serves, as the real server's discovery documents
// describe them (plural, kind, scope, short names).
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

const std::vector<ResourceType>& ServedResourceTypes() {
  static const std::vector<ResourceType>* const kTypes = new std::vector<ResourceType>{
      {.group = "",
       .version = "v1",
       .resource = "namespaces",
       .kind = "Namespace",
       .namespaced = false,
       .short_names = {"ns"}},
      {.group = "",
       .version = "v1",
       .resource = "services",
       .kind = "Service",
       .namespaced = true,
       .short_names = {"svc"}},
      {.group = "",
       .version = "v1",
       .resource = "endpoints",
       .kind = "Endpoints",
       .namespaced = true,
       .short_names = {"ep"}},
      {.group = "",
       .version = "v1",
       .resource = "pods",
       .kind = "Pod",
       .namespaced = true,
       .short_names = {"po"}},
      {.group = "discovery.k8s.io",
       .version = "v1",
       .resource = "endpointslices",
       .kind = "EndpointSlice",
       .namespaced = true,
       .short_names = {}},
      {.group = "apps",
       .version = "v1",
       .resource = "deployments",
       .kind = "Deployment",
       .namespaced = true,
       .short_names = {"deploy"}},
  };
  return *kTypes;
}

const ResourceType* FindResourceType(const std::string& group, const std::string& resource) {
  for (const auto& type : ServedResourceTypes()) {
    if (type.group == group && type.resource == resource) return &type;
  }
  return nullptr;
}

}  // namespace podlb::sandbox
