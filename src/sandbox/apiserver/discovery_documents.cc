#include "sandbox/apiserver/discovery_documents.h"

#include <algorithm>
#include <cctype>
#include <vector>

#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

const json kVerbs = {"create", "delete", "deletecollection", "get",
                     "list",   "patch",  "update",           "watch"};

std::vector<std::string> Groups() {
  std::vector<std::string> groups;
  for (const auto& type : ServedResourceTypes()) {
    if (!type.group.empty() &&
        std::find(groups.begin(), groups.end(), type.group) == groups.end()) {
      groups.push_back(type.group);
    }
  }
  return groups;
}

json GroupVersion(const std::string& group) {
  return {{"groupVersion", group + "/v1"}, {"version", "v1"}};
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

}  // namespace

json VersionDocument() {
  return {{"major", "1"},
          {"minor", "32"},
          {"gitVersion", "v1.32.0-podlb-sandbox"},
          {"gitCommit", "0000000000000000000000000000000000000000"},
          {"gitTreeState", "clean"},
          {"buildDate", "2024-12-11T00:00:00Z"},
          {"goVersion", "go1.23.0"},
          {"compiler", "gc"},
          {"platform", "linux/amd64"}};
}

json ApiVersionsDocument(const std::string& server_address) {
  return {{"kind", "APIVersions"},
          {"versions", {"v1"}},
          {"serverAddressByClientCIDRs",
           {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", server_address}}}}};
}

json ApiGroupListDocument() {
  json groups = json::array();
  for (const auto& group : Groups()) {
    json doc = *ApiGroupDocument(group);
    doc.erase("kind");
    doc.erase("apiVersion");
    groups.push_back(doc);
  }
  return {{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
}

std::optional<json> ApiGroupDocument(const std::string& group) {
  auto groups = Groups();
  if (std::find(groups.begin(), groups.end(), group) == groups.end()) return std::nullopt;
  return json{{"kind", "APIGroup"},
              {"apiVersion", "v1"},
              {"name", group},
              {"versions", {GroupVersion(group)}},
              {"preferredVersion", GroupVersion(group)}};
}

std::optional<json> ApiResourceListDocument(const std::string& group, const std::string& version) {
  json resources = json::array();
  for (const auto& type : ServedResourceTypes()) {
    if (type.group != group || type.version != version) continue;
    json entry = {{"name", type.resource},
                  {"singularName", Lower(type.kind)},
                  {"namespaced", type.namespaced},
                  {"kind", type.kind},
                  {"verbs", type.verbs.empty() ? kVerbs : json(type.verbs)}};
    if (!type.short_names.empty()) entry["shortNames"] = type.short_names;
    if (type.resource == "services" || type.resource == "pods" ||
        (type.group == "apps" && type.resource != "controllerrevisions") ||
        type.resource == "jobs") {
      entry["categories"] = {"all"};
    }
    resources.push_back(entry);
    for (const auto& sub : type.subresources) {
      json sub_entry = {{"name", type.resource + "/" + sub},
                        {"singularName", ""},
                        {"namespaced", type.namespaced},
                        {"kind", type.kind},
                        {"verbs", {"get", "patch", "update"}}};
      if (sub == "scale") {
        sub_entry["group"] = "autoscaling";
        sub_entry["version"] = "v1";
        sub_entry["kind"] = "Scale";
      } else if (sub == "log") {
        sub_entry["verbs"] = {"get"};
      } else if (sub == "token") {
        sub_entry["group"] = "authentication.k8s.io";
        sub_entry["version"] = "v1";
        sub_entry["kind"] = "TokenRequest";
        sub_entry["verbs"] = {"create"};
      }
      resources.push_back(sub_entry);
    }
  }
  if (resources.empty()) return std::nullopt;
  return json{{"kind", "APIResourceList"},
              {"apiVersion", "v1"},
              {"groupVersion", group.empty() ? version : group + "/" + version},
              {"resources", resources}};
}

namespace {

std::string GvPath(const ResourceType& type) {
  return type.group.empty() ? "api/" + type.version : "apis/" + type.group + "/" + type.version;
}

}  // namespace

json OpenApiV3Root() {
  json paths = json::object();
  for (const auto& type : ServedResourceTypes()) {
    std::string path = GvPath(type);
    paths[path] = {{"serverRelativeURL", "/openapi/v3/" + path + "?hash=podlb-sandbox-1"}};
  }
  return {{"paths", paths}};
}

std::optional<json> OpenApiV3Document(const std::string& gv_path) {
  json paths = json::object();
  json query_param = {{"name", "fieldValidation"},
                      {"in", "query"},
                      {"description", "Ignore, Warn or Strict"},
                      {"schema", {{"type", "string"}, {"uniqueItems", true}}}};
  for (const auto& type : ServedResourceTypes()) {
    if (GvPath(type) != gv_path || !type.verbs.empty()) continue;
    std::string item = "/" + gv_path + (type.namespaced ? "/namespaces/{namespace}/" : "/") +
                       type.resource + "/{name}";
    json gvk = {{"group", type.group}, {"version", type.version}, {"kind", type.kind}};
    json operation = {{"operationId", "patch" + type.kind},
                      {"parameters", {query_param}},
                      {"responses", {{"200", {{"description", "OK"}}}}},
                      {"x-kubernetes-action", "patch"},
                      {"x-kubernetes-group-version-kind", gvk}};
    paths[item] = {{"patch", operation}};
  }
  if (paths.empty()) return std::nullopt;
  return json{{"openapi", "3.0.0"},
              {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
              {"paths", paths},
              {"components", {{"schemas", json::object()}}}};
}

}  // namespace podlb::sandbox
