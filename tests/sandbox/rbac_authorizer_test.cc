// RBAC decisions of the API-server stand-in over Roles and bindings in a real ResourceStore:
// verbs, apiGroups, resources and subresources, resourceNames, namespaces, wildcards,
// nonResourceURLs, group subjects, a binding to a missing role, and the 403 message.
#include "sandbox/apiserver/rbac_authorizer.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

const UserInfo kPodlb = ServiceAccountUser("podlb-system", "podlb");

RequestAttributes Resource(const std::string& verb, const std::string& group,
                           const std::string& resource, const std::string& ns,
                           const std::string& name = "", const std::string& subresource = "") {
  RequestAttributes a;
  a.verb = verb;
  a.api_group = group;
  a.resource = resource;
  a.ns = ns;
  a.name = name;
  a.subresource = subresource;
  return a;
}

RequestAttributes Path(const std::string& verb, const std::string& path) {
  RequestAttributes a;
  a.resource_request = false;
  a.verb = verb;
  a.path = path;
  return a;
}

class RbacAuthorizerTest : public ::testing::Test {
 protected:
  void ClusterRole(const std::string& name, json rules) {
    ASSERT_TRUE(store_.Create("clusterroles", "",
                              {{"metadata", {{"name", name}}}, {"rules", std::move(rules)}})
                    .ok());
  }
  void Role(const std::string& ns, const std::string& name, json rules) {
    ASSERT_TRUE(
        store_.Create("roles", ns, {{"metadata", {{"name", name}}}, {"rules", std::move(rules)}})
            .ok());
  }
  void Bind(const std::string& resource, const std::string& ns, const std::string& name,
            const std::string& role_kind, const std::string& role, json subjects) {
    ASSERT_TRUE(store_
                    .Create(resource, ns,
                            {{"metadata", {{"name", name}}},
                             {"roleRef",
                              {{"apiGroup", "rbac.authorization.k8s.io"},
                               {"kind", role_kind},
                               {"name", role}}},
                             {"subjects", std::move(subjects)}})
                    .ok());
  }
  json PodlbSubject() {
    return json::array(
        {{{"kind", "ServiceAccount"}, {"name", "podlb"}, {"namespace", "podlb-system"}}});
  }
  bool Allowed(const UserInfo& user, const RequestAttributes& a) {
    return authorizer_.Authorize(user, a).allowed;
  }

  ResourceStore store_;
  RbacAuthorizer authorizer_{store_};
};

TEST_F(RbacAuthorizerTest, ClusterRoleBindingGrantsExactlyTheListedVerbsEverywhere) {
  ClusterRole("podlb-discovery", {{{"apiGroups", {"discovery.k8s.io"}},
                                   {"resources", {"endpointslices"}},
                                   {"verbs", {"get", "list", "watch"}}},
                                  {{"apiGroups", {""}},
                                   {"resources", {"services", "endpoints"}},
                                   {"verbs", {"get", "list", "watch"}}}});
  Bind("clusterrolebindings", "", "podlb-discovery", "ClusterRole", "podlb-discovery",
       PodlbSubject());
  for (const char* verb : {"get", "list", "watch"}) {
    EXPECT_TRUE(Allowed(kPodlb, Resource(verb, "discovery.k8s.io", "endpointslices", "default")));
    EXPECT_TRUE(Allowed(kPodlb, Resource(verb, "", "services", "other")));
    EXPECT_TRUE(Allowed(kPodlb, Resource(verb, "discovery.k8s.io", "endpointslices", "")));
  }
  EXPECT_FALSE(Allowed(kPodlb, Resource("create", "discovery.k8s.io", "endpointslices", "default")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("delete", "", "services", "default", "greeter")));
  // The group is part of the resource: endpointslices in the core group is another resource.
  EXPECT_FALSE(Allowed(kPodlb, Resource("list", "", "endpointslices", "default")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("list", "", "pods", "default")));
  // Another service account is not the subject.
  EXPECT_FALSE(Allowed(ServiceAccountUser("default", "podlb"),
                       Resource("list", "", "services", "default")));
}

TEST_F(RbacAuthorizerTest, BatchJobsAreAuthorizedInTheirGroup) {
  // What `podlb demo --cluster` needs in its scratch namespace: run a Job and read its logs.
  Role("scratch", "demo-runner",
       {{{"apiGroups", {"batch"}}, {"resources", {"jobs"}}, {"verbs", {"create", "get", "watch"}}},
        {{"apiGroups", {""}}, {"resources", {"pods", "pods/log"}}, {"verbs", {"get", "list"}}}});
  Bind("rolebindings", "scratch", "demo-runner", "Role", "demo-runner", PodlbSubject());
  EXPECT_TRUE(Allowed(kPodlb, Resource("create", "batch", "jobs", "scratch")));
  EXPECT_TRUE(Allowed(kPodlb, Resource("watch", "batch", "jobs", "scratch", "demo")));
  EXPECT_TRUE(Allowed(kPodlb, Resource("get", "", "pods", "scratch", "demo-x", "log")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("delete", "batch", "jobs", "scratch", "demo")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("update", "batch", "jobs", "scratch", "demo", "status")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("create", "apps", "jobs", "scratch")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("create", "batch", "jobs", "default")));
}

TEST_F(RbacAuthorizerTest, RoleBindingGrantsOnlyInItsNamespace) {
  Role("default", "reader", {{{"apiGroups", {""}}, {"resources", {"services"}}, {"verbs", {"list"}}}});
  Bind("rolebindings", "default", "reader", "Role", "reader", PodlbSubject());
  EXPECT_TRUE(Allowed(kPodlb, Resource("list", "", "services", "default")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("list", "", "services", "other")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("list", "", "services", "")));  // cluster-wide
}

TEST_F(RbacAuthorizerTest, RoleBindingToAClusterRoleGrantsItsRulesInTheNamespace) {
  ClusterRole("view-svc", {{{"apiGroups", {""}}, {"resources", {"services"}}, {"verbs", {"get"}}}});
  // A ServiceAccount subject without a namespace means the binding's own.
  Bind("rolebindings", "podlb-system", "view", "ClusterRole", "view-svc",
       json::array({{{"kind", "ServiceAccount"}, {"name", "podlb"}}}));
  EXPECT_TRUE(Allowed(kPodlb, Resource("get", "", "services", "podlb-system", "x")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("get", "", "services", "default", "x")));
}

TEST_F(RbacAuthorizerTest, SubresourcesNeedTheirOwnRule) {
  ClusterRole("pods", {{{"apiGroups", {""}}, {"resources", {"pods"}}, {"verbs", {"get"}}},
                       {{"apiGroups", {"apps"}}, {"resources", {"*/scale"}}, {"verbs", {"update"}}}});
  Bind("clusterrolebindings", "", "pods", "ClusterRole", "pods", PodlbSubject());
  EXPECT_TRUE(Allowed(kPodlb, Resource("get", "", "pods", "default", "p")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("get", "", "pods", "default", "p", "log")));
  EXPECT_TRUE(Allowed(kPodlb, Resource("update", "apps", "deployments", "default", "d", "scale")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("update", "apps", "deployments", "default", "d")));
  store_.Delete("clusterrolebindings", "", "pods").IgnoreError();
  ClusterRole("logs", {{{"apiGroups", {""}}, {"resources", {"pods/log"}}, {"verbs", {"get"}}}});
  Bind("clusterrolebindings", "", "logs", "ClusterRole", "logs", PodlbSubject());
  EXPECT_TRUE(Allowed(kPodlb, Resource("get", "", "pods", "default", "p", "log")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("get", "", "pods", "default", "p")));
}

TEST_F(RbacAuthorizerTest, ResourceNamesLimitToThoseObjects) {
  ClusterRole("one", {{{"apiGroups", {""}},
                       {"resources", {"configmaps"}},
                       {"resourceNames", {"podlb-config"}},
                       {"verbs", {"get", "watch", "list"}}}});
  Bind("clusterrolebindings", "", "one", "ClusterRole", "one", PodlbSubject());
  EXPECT_TRUE(Allowed(kPodlb, Resource("get", "", "configmaps", "default", "podlb-config")));
  EXPECT_FALSE(Allowed(kPodlb, Resource("get", "", "configmaps", "default", "other")));
  // A list of the whole collection names no object: not allowed by a resourceNames rule.
  EXPECT_FALSE(Allowed(kPodlb, Resource("list", "", "configmaps", "default")));
  // A watch narrowed to the name by a field selector is (the handler sets the name).
  EXPECT_TRUE(Allowed(kPodlb, Resource("watch", "", "configmaps", "default", "podlb-config")));
}

TEST_F(RbacAuthorizerTest, WildcardsMatchEveryVerbGroupAndResource) {
  ClusterRole("all", {{{"apiGroups", {"*"}}, {"resources", {"*"}}, {"verbs", {"*"}}}});
  Bind("clusterrolebindings", "", "all", "ClusterRole", "all",
       json::array({{{"kind", "Group"},
                     {"apiGroup", "rbac.authorization.k8s.io"},
                     {"name", "system:serviceaccounts:podlb-system"}}}));
  EXPECT_TRUE(Allowed(kPodlb, Resource("deletecollection", "apps", "daemonsets", "x")));
  EXPECT_TRUE(Allowed(kPodlb, Resource("get", "", "pods", "x", "p", "log")));
  EXPECT_FALSE(Allowed(ServiceAccountUser("default", "podlb"), Resource("get", "", "pods", "x")));
  // Resource rules never grant non-resource paths.
  EXPECT_FALSE(Allowed(kPodlb, Path("get", "/metrics")));
}

TEST_F(RbacAuthorizerTest, NonResourceUrlsFromClusterRoles) {
  ClusterRole("metrics", {{{"nonResourceURLs", {"/metrics", "/debug/*"}}, {"verbs", {"get"}}}});
  Bind("clusterrolebindings", "", "metrics", "ClusterRole", "metrics",
       json::array({{{"kind", "User"}, {"name", "alice"}}}));
  UserInfo alice{"alice", {"system:authenticated"}};
  EXPECT_TRUE(Allowed(alice, Path("get", "/metrics")));
  EXPECT_TRUE(Allowed(alice, Path("get", "/debug/pprof")));
  EXPECT_FALSE(Allowed(alice, Path("post", "/metrics")));
  EXPECT_FALSE(Allowed(alice, Path("get", "/logs")));
  // Every authenticated user reads discovery (system:discovery) and may ask what it can do.
  EXPECT_TRUE(Allowed(alice, Path("get", "/apis/apps/v1")));
  EXPECT_TRUE(Allowed(alice, Path("get", "/version")));
  EXPECT_TRUE(Allowed(alice, Resource("create", "authorization.k8s.io",
                                      "selfsubjectaccessreviews", "")));
  UserInfo anonymous{"system:anonymous", {"system:unauthenticated"}};
  EXPECT_FALSE(Allowed(anonymous, Path("get", "/apis")));
}

TEST_F(RbacAuthorizerTest, MastersMayDoAnything) {
  UserInfo admin{"kubernetes-admin", {"system:masters", "system:authenticated"}};
  EXPECT_TRUE(Allowed(admin, Resource("delete", "rbac.authorization.k8s.io", "clusterroles", "",
                                      "podlb-discovery")));
  EXPECT_TRUE(Allowed(admin, Path("post", "/anything")));
}

TEST_F(RbacAuthorizerTest, ABindingToAMissingRoleIsTheReason) {
  Bind("clusterrolebindings", "", "dangling", "ClusterRole", "podlb-discovery", PodlbSubject());
  RequestAttributes watch = Resource("watch", "discovery.k8s.io", "endpointslices", "default");
  AuthorizationDecision decision = authorizer_.Authorize(kPodlb, watch);
  EXPECT_FALSE(decision.allowed);
  EXPECT_EQ(decision.reason,
            "RBAC: clusterrole.rbac.authorization.k8s.io \"podlb-discovery\" not found");
  EXPECT_EQ(ForbiddenMessage(kPodlb, watch, decision.reason),
            "endpointslices.discovery.k8s.io is forbidden: User "
            "\"system:serviceaccount:podlb-system:podlb\" cannot watch resource \"endpointslices\" "
            "in API group \"discovery.k8s.io\" in the namespace \"default\": RBAC: "
            "clusterrole.rbac.authorization.k8s.io \"podlb-discovery\" not found");
}

TEST_F(RbacAuthorizerTest, ForbiddenMessagesAsTheRealServerWritesThem) {
  EXPECT_EQ(ForbiddenMessage(kPodlb, Resource("get", "", "pods", "default", "p", "log"), ""),
            "pods \"p\" is forbidden: User \"system:serviceaccount:podlb-system:podlb\" cannot get "
            "resource \"pods/log\" in API group \"\" in the namespace \"default\"");
  EXPECT_EQ(ForbiddenMessage(kPodlb, Resource("list", "", "nodes", ""), ""),
            "nodes is forbidden: User \"system:serviceaccount:podlb-system:podlb\" cannot list "
            "resource \"nodes\" in API group \"\" at the cluster scope");
  EXPECT_EQ(ForbiddenMessage(kPodlb, Path("get", "/metrics"), ""),
            "forbidden: User \"system:serviceaccount:podlb-system:podlb\" cannot get path "
            "\"/metrics\"");
}

TEST(ServiceAccountUserTest, NamesAndGroupsAsTheAuthenticatorSetsThem) {
  UserInfo user = ServiceAccountUser("podlb-system", "podlb");
  EXPECT_EQ(user.name, "system:serviceaccount:podlb-system:podlb");
  EXPECT_THAT(user.groups,
              ::testing::ElementsAre("system:serviceaccounts", "system:serviceaccounts:podlb-system",
                                     "system:authenticated"));
}

}  // namespace
}  // namespace podlb::sandbox
