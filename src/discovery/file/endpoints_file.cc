#include "discovery/file/endpoints_file.h"

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"
#include "yaml-cpp/yaml.h"

namespace podlb {
namespace {

bool IsIpLiteral(const std::string& text) {
  in6_addr buf;
  return inet_pton(AF_INET, text.c_str(), &buf) == 1 || inet_pton(AF_INET6, text.c_str(), &buf) == 1;
}

absl::Status Invalid(const std::string& origin, const std::string& where, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", where, ": ", why));
}

absl::StatusOr<Endpoint> ParseEndpoint(const YAML::Node& node, const std::string& origin,
                                       const std::string& where) {
  if (!node.IsMap()) return Invalid(origin, where, "expected a mapping");
  Endpoint e;
  if (!node["address"]) return Invalid(origin, where, "missing address");
  e.address = node["address"].as<std::string>();
  if (!IsIpLiteral(e.address))
    return Invalid(origin, where + ".address", "\"" + e.address + "\" is not an IP literal");
  if (!node["port"]) return Invalid(origin, where, "missing port");
  int port = node["port"].as<int>();
  if (port < 1 || port > 65535) return Invalid(origin, where + ".port", "must be 1..65535");
  e.port = static_cast<uint16_t>(port);
  if (node["pod"]) e.pod_name = node["pod"].as<std::string>();
  if (node["node"]) e.node_name = node["node"].as<std::string>();
  if (node["zone"]) e.zone = node["zone"].as<std::string>();
  e.ready = node["ready"] ? node["ready"].as<bool>() : true;
  e.serving = node["serving"] ? node["serving"].as<bool>() : e.ready;
  e.terminating = node["terminating"] ? node["terminating"].as<bool>() : false;
  if (node["weight"]) {
    int weight = node["weight"].as<int>();
    if (weight < 1) return Invalid(origin, where + ".weight", "must be at least 1");
    e.weight = static_cast<uint32_t>(weight);
  }
  return e;
}

absl::StatusOr<std::vector<FileService>> ParseDocument(const YAML::Node& root,
                                                       const std::string& origin) {
  if (!root.IsMap() || !root["services"] || !root["services"].IsSequence())
    return Invalid(origin, "top level", "expected a mapping with a `services` list");
  std::vector<FileService> services;
  size_t i = 0;
  for (const auto& svc : root["services"]) {
    std::string where = absl::StrCat("services[", i++, "]");
    if (!svc.IsMap() || !svc["service"]) return Invalid(origin, where, "missing `service`");
    FileService out;
    auto key = ServiceKey::Parse(svc["service"].as<std::string>());
    if (!key.ok()) return Invalid(origin, where + ".service", std::string(key.status().message()));
    out.keys.push_back(*key);
    if (svc["aliases"]) {
      for (const auto& alias : svc["aliases"]) {
        auto k = ServiceKey::Parse(alias.as<std::string>());
        if (!k.ok()) return Invalid(origin, where + ".aliases", std::string(k.status().message()));
        out.keys.push_back(*k);
      }
    }
    if (svc["annotations"]) {
      if (!svc["annotations"].IsMap()) return Invalid(origin, where + ".annotations", "expected a mapping");
      for (const auto& kv : svc["annotations"])
        out.annotations[kv.first.as<std::string>()] = kv.second.as<std::string>();
    }
    if (svc["endpoints"]) {
      if (!svc["endpoints"].IsSequence()) return Invalid(origin, where + ".endpoints", "expected a list");
      size_t j = 0;
      for (const auto& node : svc["endpoints"]) {
        auto e = ParseEndpoint(node, origin, absl::StrCat(where, ".endpoints[", j++, "]"));
        if (!e.ok()) return e.status();
        out.endpoints.push_back(std::move(*e));
      }
    }
    services.push_back(std::move(out));
  }
  return services;
}

}  // namespace

absl::StatusOr<std::vector<FileService>> ParseEndpointsFile(const std::string& content,
                                                            const std::string& origin) {
  // yaml-cpp reports errors by exception; none may leave this function.
  try {
    return ParseDocument(YAML::Load(content), origin);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", e.what()));
  }
}

}  // namespace podlb
