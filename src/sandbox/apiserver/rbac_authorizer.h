// RbacAuthorizer: the real server's RBAC authorizer over the Roles, ClusterRoles, RoleBindings and
// ClusterRoleBindings in the store. A request is allowed when some binding whose subjects match
// the user grants a rule covering it: verbs, apiGroups, resources (with "pods/log" style
// subresources and "*/scale"), resourceNames, the binding's namespace for RoleBindings, and
// nonResourceURLs (ClusterRoles only) for paths outside the API. Users in system:masters are
// allowed everything; every authenticated user may read discovery and post
// SelfSubjectAccessReviews (the default system:discovery, system:basic-user and
// system:public-info-viewer bindings, built in rather than stored). Reads the store on every
// call (no cache), so a change of a role applies to the next request. Thread-safe.
#pragma once

#include <string>

#include "sandbox/apiserver/authentication.h"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

// What the real server's RequestInfo says about a request.
struct RequestAttributes {
  bool resource_request = true;
  std::string verb;  // get list watch create update patch delete deletecollection
  std::string api_group;
  std::string api_version;
  std::string resource;     // plural
  std::string subresource;  // "log", "token", "scale", "status" or empty
  std::string ns;           // empty: cluster scope
  std::string name;         // empty for collections (unless a fieldSelector names one object)
  std::string path;         // the request path, for non-resource requests
};

struct AuthorizationDecision {
  bool allowed = false;
  // Why not, when bindings named a role that does not exist ("RBAC: clusterrole... not found").
  std::string reason;
};

class RbacAuthorizer {
 public:
  explicit RbacAuthorizer(const ResourceStore& store) : store_(store) {}
  AuthorizationDecision Authorize(const UserInfo& user, const RequestAttributes& request) const;

 private:
  const ResourceStore& store_;
};

// The real server's 403 message ("endpointslices.discovery.k8s.io is forbidden: User \"...\"
// cannot watch resource \"endpointslices\" in API group \"discovery.k8s.io\" in the namespace
// \"default\"").
std::string ForbiddenMessage(const UserInfo& user, const RequestAttributes& request,
                             const std::string& reason);

}  // namespace podlb::sandbox
