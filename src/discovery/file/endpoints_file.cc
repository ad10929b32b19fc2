#include "discovery/file/endpoints_file.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "core/status_macros.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace podlb {
namespace {

using Json = nlohmann::json;

// A YAML file is converted to the JSON tree node by node, and an alias is copied each time it is
// used, so a few lines of nested aliases could expand to billions of nodes. Without aliases a
// document has fewer nodes than bytes; this many per byte is an alias bomb, not a file.
constexpr size_t kMaxYamlNodesPerByte = 2;

absl::Status Invalid(const std::string& origin, const std::string& where, const std::string& why) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": ", where, ": ", why));
}

// YAML scalars become JSON strings whatever they look like (YAML leaves them untyped); the
// checks below convert them as yaml-cpp's as<T>() would, so a file means the same in either
// syntax.
absl::StatusOr<Json> YamlToJson(const YAML::Node& node, size_t& budget) {
  if (budget-- == 0) {
    return absl::InvalidArgumentError(
        "aliases expand the document to more than 2 nodes per byte of the file; expand them "
        "by hand if this is meant");
  }
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      return Json(node.Scalar());
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : node) {
        auto value = YamlToJson(item, budget);
        if (!value.ok()) return value.status();
        out.push_back(std::move(*value));
      }
      return out;
    }
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return absl::InvalidArgumentError(
              absl::StrCat("line ", kv.first.Mark().line + 1, ": a mapping key must be a scalar"));
        }
        auto value = YamlToJson(kv.second, budget);
        if (!value.ok()) return value.status();
        out[kv.first.Scalar()] = std::move(*value);
      }
      return out;
    }
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      break;
  }
  return Json(nullptr);
}

// JSON is the common case for a generated file, and the fast one: for 100 Services of 10
// endpoints yaml-cpp costs ~15-20 ms, nlohmann ~2 ms (bench/discovery/endpoints_file_bench).
// Content that starts like JSON but is not (a YAML flow mapping such as `{services: []}`) is
// YAML's to accept or reject.
absl::StatusOr<Json> LoadDocument(const std::string& content, const std::string& origin) {
  size_t first = content.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && content[first] == '{') {
    Json json = Json::parse(content, nullptr, /*allow_exceptions=*/false);
    if (!json.is_discarded()) return json;
  }
  // yaml-cpp reports errors by exception; none may leave this function.
  try {
    size_t budget = kMaxYamlNodesPerByte * content.size() + 16;
    auto json = YamlToJson(YAML::Load(content), budget);
    if (!json.ok())
      return absl::InvalidArgumentError(absl::StrCat(origin, ": ", json.status().message()));
    return json;
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": ", e.what()));
  }
}

// A field of a mapping; nullptr when absent or null (YAML `~` or an empty value).
const Json* Field(const Json& map, const char* name) {
  auto it = map.find(name);
  if (it == map.end() || it->is_null()) return nullptr;
  return &*it;
}

// The text of a scalar (a JSON number or boolean as written, as YAML would read it).
absl::StatusOr<std::string> AsString(const Json& value, const std::string& origin,
                                     const std::string& where) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number() || value.is_boolean()) return value.dump();
  return Invalid(origin, where, "expected a string");
}

// A JSON integer, or a scalar read as yaml-cpp reads an int: the base from the prefix (0x, 0).
absl::StatusOr<int64_t> AsInteger(const Json& value, const std::string& origin,
                                  const std::string& where) {
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (!text.empty() && !absl::ascii_isspace(static_cast<unsigned char>(text[0]))) {
      errno = 0;
      char* end = nullptr;
      long long n = std::strtoll(text.c_str(), &end, 0);
      if (errno == 0 && end == text.c_str() + text.size()) return n;
    }
    return Invalid(origin, where, "\"" + text + "\" is not an integer");
  }
  return Invalid(origin, where, "expected an integer");
}

// A JSON boolean, or a scalar yaml-cpp reads as one: y/yes/true/on and n/no/false/off, in lower
// case, upper case or capitalized.
absl::StatusOr<bool> AsBool(const Json& value, const std::string& origin,
                            const std::string& where) {
  if (value.is_boolean()) return value.get<bool>();
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    const std::string lower = absl::AsciiStrToLower(text);
    const bool flexible_case = text == lower || text == absl::AsciiStrToUpper(text) ||
                               (text.size() > 1 && text.substr(1) == lower.substr(1));
    if (flexible_case) {
      if (lower == "y" || lower == "yes" || lower == "true" || lower == "on") return true;
      if (lower == "n" || lower == "no" || lower == "false" || lower == "off") return false;
    }
    return Invalid(origin, where, "\"" + text + "\" is not a boolean (true or false)");
  }
  return Invalid(origin, where, "expected true or false");
}

bool IsIpLiteral(const std::string& text) {
  in6_addr buf;
  return inet_pton(AF_INET, text.c_str(), &buf) == 1 ||
         inet_pton(AF_INET6, text.c_str(), &buf) == 1;
}

absl::StatusOr<Endpoint> ParseEndpoint(const Json& node, const std::string& origin,
                                       const std::string& where) {
  if (!node.is_object()) return Invalid(origin, where, "expected a mapping");
  Endpoint e;
  const Json* address = Field(node, "address");
  if (address == nullptr) return Invalid(origin, where, "missing address");
  ASSIGN_OR_RETURN(e.address, AsString(*address, origin, where + ".address"));
  if (!IsIpLiteral(e.address))
    return Invalid(origin, where + ".address", "\"" + e.address + "\" is not an IP literal");
  const Json* port_field = Field(node, "port");
  if (port_field == nullptr) return Invalid(origin, where, "missing port");
  ASSIGN_OR_RETURN(int64_t port, AsInteger(*port_field, origin, where + ".port"));
  if (port < 1 || port > 65535) return Invalid(origin, where + ".port", "must be 1..65535");
  e.port = static_cast<uint16_t>(port);
  if (const Json* v = Field(node, "pod")) {
    ASSIGN_OR_RETURN(e.pod_name, AsString(*v, origin, where + ".pod"));
  }
  if (const Json* v = Field(node, "node")) {
    ASSIGN_OR_RETURN(e.node_name, AsString(*v, origin, where + ".node"));
  }
  if (const Json* v = Field(node, "zone")) {
    ASSIGN_OR_RETURN(e.zone, AsString(*v, origin, where + ".zone"));
  }
  e.ready = true;
  if (const Json* v = Field(node, "ready")) {
    ASSIGN_OR_RETURN(e.ready, AsBool(*v, origin, where + ".ready"));
  }
  e.serving = e.ready;
  if (const Json* v = Field(node, "serving")) {
    ASSIGN_OR_RETURN(e.serving, AsBool(*v, origin, where + ".serving"));
  }
  e.terminating = false;
  if (const Json* v = Field(node, "terminating")) {
    ASSIGN_OR_RETURN(e.terminating, AsBool(*v, origin, where + ".terminating"));
  }
  if (const Json* v = Field(node, "weight")) {
    ASSIGN_OR_RETURN(int64_t weight, AsInteger(*v, origin, where + ".weight"));
    if (weight < 1) return Invalid(origin, where + ".weight", "must be at least 1");
    if (weight > UINT32_MAX)
      return Invalid(origin, where + ".weight", "must be at most 4294967295");
    e.weight = static_cast<uint32_t>(weight);
  }
  return e;
}

absl::StatusOr<ServiceKey> ParseKey(const Json& value, const std::string& origin,
                                    const std::string& where) {
  ASSIGN_OR_RETURN(std::string text, AsString(value, origin, where));
  auto key = ServiceKey::Parse(text);
  if (!key.ok()) return Invalid(origin, where, std::string(key.status().message()));
  return key;
}

absl::StatusOr<std::vector<FileService>> ParseDocument(const Json& root,
                                                       const std::string& origin) {
  const Json* list = root.is_object() ? Field(root, "services") : nullptr;
  if (list == nullptr || !list->is_array())
    return Invalid(origin, "top level", "expected a mapping with a `services` list");
  std::vector<FileService> services;
  services.reserve(list->size());
  size_t i = 0;
  for (const Json& svc : *list) {
    std::string where = absl::StrCat("services[", i++, "]");
    const Json* service = svc.is_object() ? Field(svc, "service") : nullptr;
    if (service == nullptr) return Invalid(origin, where, "missing `service`");
    FileService out;
    ASSIGN_OR_RETURN(ServiceKey key, ParseKey(*service, origin, where + ".service"));
    out.keys.push_back(std::move(key));
    if (const Json* aliases = Field(svc, "aliases")) {
      if (!aliases->is_array()) return Invalid(origin, where + ".aliases", "expected a list");
      for (const Json& alias : *aliases) {
        ASSIGN_OR_RETURN(ServiceKey k, ParseKey(alias, origin, where + ".aliases"));
        out.keys.push_back(std::move(k));
      }
    }
    if (const Json* annotations = Field(svc, "annotations")) {
      if (!annotations->is_object())
        return Invalid(origin, where + ".annotations", "expected a mapping");
      for (const auto& [name, value] : annotations->items()) {
        ASSIGN_OR_RETURN(out.annotations[name],
                         AsString(value, origin, absl::StrCat(where, ".annotations.", name)));
      }
    }
    if (const Json* endpoints = Field(svc, "endpoints")) {
      if (!endpoints->is_array()) return Invalid(origin, where + ".endpoints", "expected a list");
      out.endpoints.reserve(endpoints->size());
      size_t j = 0;
      for (const Json& node : *endpoints) {
        ASSIGN_OR_RETURN(Endpoint e,
                         ParseEndpoint(node, origin, absl::StrCat(where, ".endpoints[", j++, "]")));
        out.endpoints.push_back(std::move(e));
      }
    }
    services.push_back(std::move(out));
  }
  return services;
}

}  // namespace

absl::StatusOr<std::vector<FileService>> ParseEndpointsFile(const std::string& content,
                                                            const std::string& origin) {
  ASSIGN_OR_RETURN(Json root, LoadDocument(content, origin));
  return ParseDocument(root, origin);
}

}  // namespace podlb
