// Rule matching follows k8s.io/kubernetes/pkg/apis/rbac/v1/evaluation_helpers.go (VerbMatches,
// APIGroupMatches, ResourceMatches, ResourceNameMatches, NonResourceURLMatches) and the visitor
// of pkg/registry/rbac/validation: ClusterRoleBindings first, then the RoleBindings of the
// request's namespace.
#include "sandbox/apiserver/rbac_authorizer.h"

#include <vector>

#include "absl/strings/str_join.h"
#include "fmt/format.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

std::vector<std::string> Strings(const json& rule, const char* field) {
  std::vector<std::string> out;
  auto it = rule.find(field);
  if (it == rule.end() || !it->is_array()) return out;
  for (const auto& item : *it) {
    if (item.is_string()) out.push_back(item.get<std::string>());
  }
  return out;
}

bool ResourceMatches(const std::vector<std::string>& resources, const std::string& combined,
                     const std::string& subresource) {
  for (const auto& r : resources) {
    if (r == "*" || r == combined) return true;
    if (!subresource.empty() && r == "*/" + subresource) return true;
  }
  return false;
}

bool NonResourceUrlMatches(const std::vector<std::string>& urls, const std::string& path) {
  for (const auto& url : urls) {
    if (url == "*" || url == path) return true;
    if (!url.empty() && url.back() == '*' && path.starts_with(url.substr(0, url.size() - 1)))
      return true;
  }
  return false;
}

bool RuleAllows(const json& rule, const RequestAttributes& request) {
  if (!rule.is_object()) return false;
  auto verbs = Strings(rule, "verbs");
  bool verb = false;
  for (const auto& v : verbs) verb |= v == "*" || v == request.verb;
  if (!verb) return false;
  if (!request.resource_request) return NonResourceUrlMatches(Strings(rule, "nonResourceURLs"), request.path);
  bool group = false;
  for (const auto& g : Strings(rule, "apiGroups")) group |= g == "*" || g == request.api_group;
  if (!group) return false;
  std::string combined =
      request.subresource.empty() ? request.resource : request.resource + "/" + request.subresource;
  if (!ResourceMatches(Strings(rule, "resources"), combined, request.subresource)) return false;
  auto names = Strings(rule, "resourceNames");
  if (names.empty()) return true;
  for (const auto& n : names) {
    if (!request.name.empty() && n == request.name) return true;
  }
  return false;
}

bool SubjectMatches(const json& subject, const UserInfo& user, const std::string& binding_ns) {
  if (!subject.is_object()) return false;
  std::string kind = subject.value("kind", "");
  std::string name = subject.value("name", "");
  if (kind == "User") return name == user.name;
  if (kind == "Group") return user.InGroup(name);
  if (kind == "ServiceAccount") {
    // A RoleBinding's ServiceAccount subject without a namespace means the binding's own.
    std::string ns = subject.value("namespace", "");
    if (ns.empty()) ns = binding_ns;
    return user.name == "system:serviceaccount:" + ns + ":" + name;
  }
  return false;
}

bool AnySubjectMatches(const json& binding, const UserInfo& user) {
  const json& subjects = binding.value("subjects", json::array());
  std::string ns = binding["metadata"].value("namespace", "");
  if (!subjects.is_array()) return false;
  for (const auto& subject : subjects) {
    if (SubjectMatches(subject, user, ns)) return true;
  }
  return false;
}

// The built-in discovery roles every authenticated user holds.
bool DefaultAllowed(const UserInfo& user, const RequestAttributes& request) {
  if (!user.InGroup("system:authenticated")) return false;
  if (request.resource_request) {
    return request.verb == "create" && request.api_group == "authorization.k8s.io" &&
           (request.resource == "selfsubjectaccessreviews" ||
            request.resource == "selfsubjectrulesreviews");
  }
  if (request.verb != "get") return false;
  static const std::vector<std::string>* const kPaths = new std::vector<std::string>{
      "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/readyz", "/version",
      "/version/", "/openapi", "/openapi/*"};
  return NonResourceUrlMatches(*kPaths, request.path);
}

}  // namespace

AuthorizationDecision RbacAuthorizer::Authorize(const UserInfo& user,
                                                const RequestAttributes& request) const {
  if (user.InGroup("system:masters") || DefaultAllowed(user, request)) return {true, ""};
  std::vector<std::string> errors;
  auto role_rules = [&](const json& binding, const std::string& binding_ns) -> json {
    const json& ref = binding.value("roleRef", json::object());
    std::string kind = ref.is_object() ? ref.value("kind", "") : "";
    std::string name = ref.is_object() ? ref.value("name", "") : "";
    absl::StatusOr<json> role = kind == "ClusterRole" ? store_.Get("clusterroles", "", name)
                                                      : store_.Get("roles", binding_ns, name);
    if (!role.ok()) {
      errors.push_back(kind == "ClusterRole"
                           ? fmt::format("clusterrole.rbac.authorization.k8s.io \"{}\" not found", name)
                           : fmt::format("role.rbac.authorization.k8s.io \"{}\" not found", name));
      return json::array();
    }
    return role->value("rules", json::array());
  };
  auto grants = [&](const json& rules) {
    if (!rules.is_array()) return false;
    for (const auto& rule : rules) {
      if (RuleAllows(rule, request)) return true;
    }
    return false;
  };
  for (const auto& binding : store_.List("clusterrolebindings", "", LabelSelector()).items) {
    if (!AnySubjectMatches(binding, user)) continue;
    const json& ref = binding.value("roleRef", json::object());
    if (!ref.is_object() || ref.value("kind", "") != "ClusterRole") continue;
    if (grants(role_rules(binding, ""))) return {true, ""};
  }
  if (request.resource_request && !request.ns.empty()) {
    for (const auto& binding : store_.List("rolebindings", request.ns, LabelSelector()).items) {
      if (!AnySubjectMatches(binding, user)) continue;
      json rules = role_rules(binding, request.ns);
      // nonResourceURLs mean nothing inside a namespace.
      if (grants(rules)) return {true, ""};
    }
  }
  std::string reason;
  if (!errors.empty()) {
    reason = "RBAC: " + (errors.size() == 1 ? errors[0] : "[" + absl::StrJoin(errors, ", ") + "]");
  }
  return {false, reason};
}

std::string ForbiddenMessage(const UserInfo& user, const RequestAttributes& request,
                             const std::string& reason) {
  std::string message;
  if (!request.resource_request) {
    message = fmt::format("User \"{}\" cannot {} path \"{}\"", user.name, request.verb, request.path);
  } else {
    std::string resource = request.subresource.empty()
                               ? request.resource
                               : request.resource + "/" + request.subresource;
    std::string scope = request.ns.empty() ? "at the cluster scope"
                                           : fmt::format("in the namespace \"{}\"", request.ns);
    message = fmt::format("User \"{}\" cannot {} resource \"{}\" in API group \"{}\" {}",
                          user.name, request.verb, resource, request.api_group, scope);
  }
  if (!reason.empty()) message += ": " + reason;
  // apierrors.NewForbidden: the qualified resource, the object's name when there is one.
  if (!request.resource_request) return "forbidden: " + message;
  std::string qualified =
      request.api_group.empty() ? request.resource : request.resource + "." + request.api_group;
  if (request.name.empty()) return fmt::format("{} is forbidden: {}", qualified, message);
  return fmt::format("{} \"{}\" is forbidden: {}", qualified, request.name, message);
}

}  // namespace podlb::sandbox
