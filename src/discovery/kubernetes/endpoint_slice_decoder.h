// Decoding of the Kubernetes JSON podlb reads (discovery.k8s.io/v1 EndpointSlice, v1 Service,
// lists and watch events) into typed models. Unknown fields are ignored; malformed input is a
// Status that names the object and the field. Pure functions: callable from any thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace podlb {

struct SliceEndpoint {
  std::vector<std::string> addresses;
  // API semantics: a nil `ready` means unknown and consumers treat it as ready; nil `serving`
  // means the same as `ready`; nil `terminating` means false.
  bool ready = true;
  bool serving = true;
  bool terminating = false;
  std::string node_name;
  std::string zone;
  std::string pod_name;  // targetRef.name when targetRef.kind is Pod (or unset)
};

struct SlicePort {
  std::string name;             // "" for the single unnamed port
  std::optional<uint16_t> port;  // nil: "all ports" (not usable for load balancing)
  std::string protocol = "TCP";
};

struct EndpointSlice {
  std::string ns;
  std::string name;
  std::string service_name;  // label kubernetes.io/service-name
  std::string address_type;  // IPv4, IPv6, FQDN
  std::string resource_version;
  std::vector<SlicePort> ports;
  std::vector<SliceEndpoint> endpoints;
};

struct ServicePort {
  std::string name;
  uint16_t port = 0;
  std::string protocol = "TCP";
};

struct Service {
  std::string ns;
  std::string name;
  std::string resource_version;
  std::vector<ServicePort> ports;
  std::map<std::string, std::string> annotations;
};

absl::StatusOr<EndpointSlice> DecodeEndpointSlice(const nlohmann::json& object);
absl::StatusOr<Service> DecodeService(const nlohmann::json& object);

// A list response (or one page of it): its items (still JSON), metadata.resourceVersion, and
// metadata.continue, the token for the next page ("" on the last page).
struct ListBody {
  std::string resource_version;
  std::string continue_token;
  std::vector<nlohmann::json> items;
};
absl::StatusOr<ListBody> DecodeList(std::string_view body, std::string_view what);

// One watch event line. For type ERROR, `object` is a metav1.Status and `error_code` its code.
struct WatchEventLine {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK, ERROR
  nlohmann::json object;
  int error_code = 0;
  std::string error_message;
  std::string resource_version;  // object.metadata.resourceVersion
};
absl::StatusOr<WatchEventLine> DecodeWatchEvent(std::string_view line, std::string_view what);

// The `message` of a metav1.Status body, or "" (for error messages).
std::string StatusMessage(std::string_view body);

}  // namespace podlb
