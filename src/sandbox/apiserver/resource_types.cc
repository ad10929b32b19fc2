// The resource types the API-server stand-in serves, as the real server's discovery documents
// describe them (plural, kind, scope, short names, subresources).
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

const std::vector<ResourceType>& ServedResourceTypes() {
  static const std::vector<ResourceType>* const kTypes = new std::vector<ResourceType>{
      {.group = "", .version = "v1", .resource = "namespaces", .kind = "Namespace",
       .namespaced = false, .short_names = {"ns"}, .subresources = {"status"}},
      {.group = "", .version = "v1", .resource = "nodes", .kind = "Node", .namespaced = false,
       .short_names = {"no"}, .subresources = {"status"}},
      {.group = "", .version = "v1", .resource = "services", .kind = "Service",
       .short_names = {"svc"}, .subresources = {"status"}},
      {.group = "", .version = "v1", .resource = "endpoints", .kind = "Endpoints",
       .short_names = {"ep"}},
      {.group = "", .version = "v1", .resource = "pods", .kind = "Pod", .short_names = {"po"},
       .subresources = {"status", "log"}},
      {.group = "", .version = "v1", .resource = "serviceaccounts", .kind = "ServiceAccount",
       .short_names = {"sa"}, .subresources = {"token"}},
      {.group = "", .version = "v1", .resource = "configmaps", .kind = "ConfigMap",
       .short_names = {"cm"}},
      {.group = "", .version = "v1", .resource = "events", .kind = "Event",
       .short_names = {"ev"}},
      {.group = "discovery.k8s.io", .version = "v1", .resource = "endpointslices",
       .kind = "EndpointSlice"},
      {.group = "apps", .version = "v1", .resource = "deployments", .kind = "Deployment",
       .short_names = {"deploy"}, .subresources = {"status", "scale"}},
      {.group = "apps", .version = "v1", .resource = "daemonsets", .kind = "DaemonSet",
       .short_names = {"ds"}, .subresources = {"status"}},
      {.group = "apps", .version = "v1", .resource = "replicasets", .kind = "ReplicaSet",
       .short_names = {"rs"}, .subresources = {"status"}},
      {.group = "apps", .version = "v1", .resource = "controllerrevisions",
       .kind = "ControllerRevision"},
      {.group = "batch", .version = "v1", .resource = "jobs", .kind = "Job",
       .subresources = {"status"}},
      {.group = "policy", .version = "v1", .resource = "poddisruptionbudgets",
       .kind = "PodDisruptionBudget", .short_names = {"pdb"}, .subresources = {"status"}},
      {.group = "rbac.authorization.k8s.io", .version = "v1", .resource = "clusterroles",
       .kind = "ClusterRole", .namespaced = false},
      {.group = "rbac.authorization.k8s.io", .version = "v1", .resource = "clusterrolebindings",
       .kind = "ClusterRoleBinding", .namespaced = false},
      {.group = "rbac.authorization.k8s.io", .version = "v1", .resource = "roles",
       .kind = "Role"},
      {.group = "rbac.authorization.k8s.io", .version = "v1", .resource = "rolebindings",
       .kind = "RoleBinding"},
      {.group = "authorization.k8s.io", .version = "v1", .resource = "selfsubjectaccessreviews",
       .kind = "SelfSubjectAccessReview", .namespaced = false, .verbs = {"create"}},
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
