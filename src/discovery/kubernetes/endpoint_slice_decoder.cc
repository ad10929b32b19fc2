#include "discovery/kubernetes/endpoint_slice_decoder.h"

#include "core/status_macros.h"

namespace podlb {
namespace {

using nlohmann::json;

const char* TypeName(const json& j) { return j.type_name(); }

// Builds the errors of one object: `endpointslice "greeter-abc": endpoints[3].addresses: ...`.
class Fields {
 public:
  Fields(std::string kind, std::string name) : kind_(std::move(kind)), name_(std::move(name)) {}

  absl::Status Error(const std::string& field, const std::string& problem) const {
    return absl::InvalidArgumentError(kind_ + " \"" + name_ + "\": " + field + ": " + problem);
  }
  absl::Status Expect(const json& j, json::value_t type, const char* type_word,
                      const std::string& field) const {
    if (j.type() == type) return absl::OkStatus();
    // nlohmann keeps unsigned and signed integers apart; both are "number" to the API.
    if (type == json::value_t::number_integer && j.is_number_integer()) return absl::OkStatus();
    return Error(field, std::string("expected ") + type_word + ", got " + TypeName(j));
  }
  // A string field that may be absent or null ("" then).
  absl::StatusOr<std::string> OptString(const json& parent, const char* key,
                                        const std::string& field) const {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) return std::string();
    if (!it->is_string()) return Error(field, std::string("expected string, got ") + TypeName(*it));
    return it->get<std::string>();
  }
  absl::StatusOr<std::optional<bool>> OptBool(const json& parent, const char* key,
                                              const std::string& field) const {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) return std::optional<bool>();
    if (!it->is_boolean()) return Error(field, std::string("expected boolean, got ") + TypeName(*it));
    return std::optional<bool>(it->get<bool>());
  }
  absl::StatusOr<std::optional<uint16_t>> OptPort(const json& parent, const char* key,
                                                  const std::string& field) const {
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) return std::optional<uint16_t>();
    if (!it->is_number_integer())
      return Error(field, std::string("expected integer, got ") + TypeName(*it));
    const int64_t v = it->get<int64_t>();
    if (v < 1 || v > 65535) return Error(field, "port " + std::to_string(v) + " out of range");
    return std::optional<uint16_t>(static_cast<uint16_t>(v));
  }
  // An array field that may be absent or null (empty then).
  absl::StatusOr<const json*> OptArray(const json& parent, const char* key,
                                       const std::string& field) const {
    static const json kEmpty = json::array();
    auto it = parent.find(key);
    if (it == parent.end() || it->is_null()) return &kEmpty;
    if (!it->is_array()) return Error(field, std::string("expected array, got ") + TypeName(*it));
    return &*it;
  }

 private:
  std::string kind_;
  std::string name_;
};

std::string NameOf(const json& object) {
  if (!object.is_object()) return "";
  auto md = object.find("metadata");
  if (md == object.end() || !md->is_object()) return "";
  auto name = md->find("name");
  return name != md->end() && name->is_string() ? name->get<std::string>() : "";
}

struct Meta {
  std::string ns, name, resource_version;
  std::map<std::string, std::string> labels, annotations;
};

absl::StatusOr<std::map<std::string, std::string>> StringMap(const json& md, const char* key,
                                                             const Fields& f) {
  std::map<std::string, std::string> out;
  auto it = md.find(key);
  if (it == md.end() || it->is_null()) return out;
  if (!it->is_object())
    return f.Error(std::string("metadata.") + key, std::string("expected object, got ") + TypeName(*it));
  for (const auto& [k, v] : it->items()) {
    if (!v.is_string())
      return f.Error(std::string("metadata.") + key + "." + k, "expected string");
    out[k] = v.get<std::string>();
  }
  return out;
}

absl::StatusOr<Meta> DecodeMeta(const json& object, const Fields& f) {
  if (!object.is_object())
    return f.Error("(object)", std::string("expected object, got ") + TypeName(object));
  auto it = object.find("metadata");
  if (it == object.end() || !it->is_object()) return f.Error("metadata", "missing or not an object");
  const json& md = *it;
  Meta meta;
  ASSIGN_OR_RETURN(meta.name, f.OptString(md, "name", "metadata.name"));
  if (meta.name.empty()) return f.Error("metadata.name", "missing");
  ASSIGN_OR_RETURN(meta.ns, f.OptString(md, "namespace", "metadata.namespace"));
  ASSIGN_OR_RETURN(meta.resource_version,
                   f.OptString(md, "resourceVersion", "metadata.resourceVersion"));
  ASSIGN_OR_RETURN(meta.labels, StringMap(md, "labels", f));
  ASSIGN_OR_RETURN(meta.annotations, StringMap(md, "annotations", f));
  return meta;
}

absl::StatusOr<SliceEndpoint> DecodeSliceEndpoint(const json& j, const std::string& at,
                                                  const Fields& f) {
  RETURN_IF_ERROR(f.Expect(j, json::value_t::object, "object", at));
  SliceEndpoint ep;
  auto addresses = j.find("addresses");
  if (addresses == j.end() || addresses->is_null()) return f.Error(at + ".addresses", "missing");
  RETURN_IF_ERROR(f.Expect(*addresses, json::value_t::array, "array", at + ".addresses"));
  for (size_t i = 0; i < addresses->size(); ++i) {
    const json& a = (*addresses)[i];
    const std::string field = at + ".addresses[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(f.Expect(a, json::value_t::string, "string", field));
    ep.addresses.push_back(a.get<std::string>());
  }
  auto conditions = j.find("conditions");
  if (conditions != j.end() && !conditions->is_null()) {
    const std::string cf = at + ".conditions";
    RETURN_IF_ERROR(f.Expect(*conditions, json::value_t::object, "object", cf));
    ASSIGN_OR_RETURN(auto ready, f.OptBool(*conditions, "ready", cf + ".ready"));
    ASSIGN_OR_RETURN(auto serving, f.OptBool(*conditions, "serving", cf + ".serving"));
    ASSIGN_OR_RETURN(auto terminating, f.OptBool(*conditions, "terminating", cf + ".terminating"));
    ep.ready = ready.value_or(true);
    ep.serving = serving.value_or(ep.ready);
    ep.terminating = terminating.value_or(false);
  }
  ASSIGN_OR_RETURN(ep.node_name, f.OptString(j, "nodeName", at + ".nodeName"));
  ASSIGN_OR_RETURN(ep.zone, f.OptString(j, "zone", at + ".zone"));
  auto ref = j.find("targetRef");
  if (ref != j.end() && !ref->is_null()) {
    RETURN_IF_ERROR(f.Expect(*ref, json::value_t::object, "object", at + ".targetRef"));
    ASSIGN_OR_RETURN(std::string kind, f.OptString(*ref, "kind", at + ".targetRef.kind"));
    ASSIGN_OR_RETURN(std::string name, f.OptString(*ref, "name", at + ".targetRef.name"));
    if (kind.empty() || kind == "Pod") ep.pod_name = std::move(name);
  }
  return ep;
}

}  // namespace

absl::StatusOr<EndpointSlice> DecodeEndpointSlice(const json& object) {
  const Fields f("endpointslice", NameOf(object));
  ASSIGN_OR_RETURN(Meta meta, DecodeMeta(object, f));
  EndpointSlice slice;
  slice.ns = meta.ns;
  slice.name = meta.name;
  slice.resource_version = meta.resource_version;
  if (auto it = meta.labels.find("kubernetes.io/service-name"); it != meta.labels.end())
    slice.service_name = it->second;
  ASSIGN_OR_RETURN(slice.address_type, f.OptString(object, "addressType", "addressType"));
  if (slice.address_type.empty()) return f.Error("addressType", "missing");

  ASSIGN_OR_RETURN(const json* ports, f.OptArray(object, "ports", "ports"));
  for (size_t i = 0; i < ports->size(); ++i) {
    const json& p = (*ports)[i];
    const std::string at = "ports[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(f.Expect(p, json::value_t::object, "object", at));
    SlicePort port;
    ASSIGN_OR_RETURN(port.name, f.OptString(p, "name", at + ".name"));
    ASSIGN_OR_RETURN(port.port, f.OptPort(p, "port", at + ".port"));
    ASSIGN_OR_RETURN(std::string protocol, f.OptString(p, "protocol", at + ".protocol"));
    if (!protocol.empty()) port.protocol = protocol;
    slice.ports.push_back(std::move(port));
  }
  ASSIGN_OR_RETURN(const json* endpoints, f.OptArray(object, "endpoints", "endpoints"));
  for (size_t i = 0; i < endpoints->size(); ++i) {
    ASSIGN_OR_RETURN(SliceEndpoint ep, DecodeSliceEndpoint((*endpoints)[i],
                                                           "endpoints[" + std::to_string(i) + "]", f));
    slice.endpoints.push_back(std::move(ep));
  }
  return slice;
}

absl::StatusOr<Service> DecodeService(const json& object) {
  const Fields f("service", NameOf(object));
  ASSIGN_OR_RETURN(Meta meta, DecodeMeta(object, f));
  Service service;
  service.ns = meta.ns;
  service.name = meta.name;
  service.resource_version = meta.resource_version;
  service.annotations = std::move(meta.annotations);
  // Large, changes with every apply, and means nothing to load balancing.
  service.annotations.erase("kubectl.kubernetes.io/last-applied-configuration");
  auto spec = object.find("spec");
  if (spec == object.end() || spec->is_null()) return service;
  RETURN_IF_ERROR(f.Expect(*spec, json::value_t::object, "object", "spec"));
  ASSIGN_OR_RETURN(const json* ports, f.OptArray(*spec, "ports", "spec.ports"));
  for (size_t i = 0; i < ports->size(); ++i) {
    const json& p = (*ports)[i];
    const std::string at = "spec.ports[" + std::to_string(i) + "]";
    RETURN_IF_ERROR(f.Expect(p, json::value_t::object, "object", at));
    ServicePort port;
    ASSIGN_OR_RETURN(port.name, f.OptString(p, "name", at + ".name"));
    ASSIGN_OR_RETURN(auto number, f.OptPort(p, "port", at + ".port"));
    if (!number) return f.Error(at + ".port", "missing");
    port.port = *number;
    ASSIGN_OR_RETURN(std::string protocol, f.OptString(p, "protocol", at + ".protocol"));
    if (!protocol.empty()) port.protocol = protocol;
    service.ports.push_back(std::move(port));
  }
  return service;
}

absl::StatusOr<ListBody> DecodeList(std::string_view body, std::string_view what) {
  const std::string prefix = "list of " + std::string(what);
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return absl::DataLossError(prefix + ": malformed JSON (" + std::to_string(body.size()) +
                               " bytes)");
  if (!j.is_object()) return absl::DataLossError(prefix + ": expected a JSON object");
  ListBody out;
  auto md = j.find("metadata");
  if (md != j.end() && md->is_object()) {
    auto rv = md->find("resourceVersion");
    if (rv != md->end() && rv->is_string()) out.resource_version = rv->get<std::string>();
    auto next = md->find("continue");
    if (next != md->end() && !next->is_null()) {
      if (!next->is_string())
        return absl::DataLossError(prefix + ": metadata.continue: expected string");
      out.continue_token = next->get<std::string>();
    }
  }
  if (out.resource_version.empty())
    return absl::DataLossError(prefix + ": metadata.resourceVersion missing");
  auto items = j.find("items");
  if (items != j.end() && !items->is_null()) {
    if (!items->is_array()) return absl::DataLossError(prefix + ": items: expected array");
    out.items.reserve(items->size());
    for (auto& item : *items) out.items.push_back(std::move(item));
  }
  return out;
}

absl::StatusOr<WatchEventLine> DecodeWatchEvent(std::string_view line, std::string_view what) {
  const std::string prefix = "watch of " + std::string(what);
  json j = json::parse(line.begin(), line.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded())
    return absl::DataLossError(prefix + ": malformed JSON event (" +
                               std::to_string(line.size()) + " bytes)");
  if (!j.is_object()) return absl::DataLossError(prefix + ": event is not a JSON object");
  auto type = j.find("type");
  auto object = j.find("object");
  if (type == j.end() || !type->is_string())
    return absl::DataLossError(prefix + ": event type missing");
  if (object == j.end() || !object->is_object())
    return absl::DataLossError(prefix + ": event object missing");
  WatchEventLine event;
  event.type = type->get<std::string>();
  event.object = std::move(*object);
  if (event.type == "ERROR") {
    if (auto code = event.object.find("code"); code != event.object.end() && code->is_number_integer())
      event.error_code = code->get<int>();
    if (auto msg = event.object.find("message"); msg != event.object.end() && msg->is_string())
      event.error_message = msg->get<std::string>();
    return event;
  }
  if (auto md = event.object.find("metadata"); md != event.object.end() && md->is_object())
    if (auto rv = md->find("resourceVersion"); rv != md->end() && rv->is_string())
      event.resource_version = rv->get<std::string>();
  return event;
}

std::string StatusMessage(std::string_view body) {
  json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_object())
    if (auto msg = j.find("message"); msg != j.end() && msg->is_string()) return msg->get<std::string>();
  return "";
}

}  // namespace podlb
