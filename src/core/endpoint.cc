#include "core/endpoint.h"

#include <algorithm>
#include <tuple>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/host_port.h"

namespace podlb {

std::string ServiceKey::ToString() const { return absl::StrCat(ns, "/", name, ":", port); }

absl::StatusOr<ServiceKey> ServiceKey::Parse(std::string_view text, std::string_view default_ns) {
  auto bad = [&](std::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "service \"", std::string(text), "\": ", std::string(why),
        "; write namespace/name:port or name.namespace:port (port is a number or a port name)"));
  };
  size_t colon = text.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == text.size()) return bad("no port");
  ServiceKey key;
  key.port = std::string(text.substr(colon + 1));
  std::string_view host = text.substr(0, colon);
  if (host.empty()) return bad("no service name");
  if (size_t slash = host.find('/'); slash != std::string_view::npos) {
    key.ns = std::string(host.substr(0, slash));
    key.name = std::string(host.substr(slash + 1));
  } else {
    std::vector<std::string> labels = absl::StrSplit(std::string(host), '.');
    key.name = std::string(labels[0]);
    if (labels.size() == 1) {
      key.ns = std::string(default_ns);
    } else {
      key.ns = std::string(labels[1]);
      // name.ns, name.ns.svc, name.ns.svc.<cluster-domain>
      if (labels.size() >= 3 && labels[2] != "svc") return bad("expected name.namespace.svc[...]");
    }
  }
  if (key.ns.empty() || key.name.empty() || key.name.find('/') != std::string::npos)
    return bad("empty namespace or name");
  return key;
}

std::string_view ToString(EndpointHealth health) {
  switch (health) {
    case EndpointHealth::kEligible: return "eligible";
    case EndpointHealth::kDraining: return "draining";
    case EndpointHealth::kExcluded: return "excluded";
  }
  return "?";
}

EndpointHealth Endpoint::Health() const {
  if (ready) return EndpointHealth::kEligible;
  if (terminating && serving) return EndpointHealth::kDraining;
  return EndpointHealth::kExcluded;
}

std::string Endpoint::HostPort() const { return FormatHostPort(address, port); }

EndpointSet::EndpointSet(ServiceKey key, uint64_t version, std::vector<Endpoint> endpoints,
                         std::map<std::string, std::string> annotations)
    : key_(std::move(key)),
      version_(version),
      endpoints_(std::move(endpoints)),
      annotations_(std::move(annotations)) {
  // Sort by address/port, better health first, then keep the first of each address/port.
  std::stable_sort(endpoints_.begin(), endpoints_.end(), [](const Endpoint& a, const Endpoint& b) {
    return std::tie(a.address, a.port, a.ready, a.serving) <
           std::tie(b.address, b.port, b.ready, b.serving);
  });
  // After the sort the best entry of a run is last (true > false); keep that one.
  std::vector<Endpoint> unique;
  unique.reserve(endpoints_.size());
  for (auto& e : endpoints_) {
    if (!unique.empty() && unique.back().address == e.address && unique.back().port == e.port) {
      unique.back() = std::move(e);
    } else {
      unique.push_back(std::move(e));
    }
  }
  endpoints_ = std::move(unique);
}

size_t EndpointSet::CountWithHealth(EndpointHealth health) const {
  return std::count_if(endpoints_.begin(), endpoints_.end(),
                       [&](const Endpoint& e) { return e.Health() == health; });
}

bool EndpointSet::SameContent(const EndpointSet& other) const {
  return endpoints_ == other.endpoints_ && annotations_ == other.annotations_;
}

}  // namespace podlb
