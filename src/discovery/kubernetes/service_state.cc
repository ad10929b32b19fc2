#include "discovery/kubernetes/service_state.h"

namespace podlb {
namespace {

bool IsIpSlice(const EndpointSlice& slice) {
  // FQDN slices (deprecated, never made by the EndpointSlice controller) carry names, not IPs.
  return slice.address_type == "IPv4" || slice.address_type == "IPv6";
}

}  // namespace

void ServiceState::UpsertSlice(EndpointSlice slice) {
  std::string name = slice.name;
  if (!IsIpSlice(slice)) {
    slices_.erase(name);
    return;
  }
  slices_[name] = std::move(slice);
}

std::vector<Endpoint> ServiceState::EndpointsForPort(
    const std::string& port_name, std::optional<uint16_t> unnamed_number) const {
  std::vector<Endpoint> out;
  for (const auto& [slice_name, slice] : slices_) {
    // Slice port names equal the Service's port names; the number is the target port.
    std::optional<uint16_t> target;
    for (const SlicePort& p : slice.ports) {
      if (p.name != port_name || !p.port) continue;
      if (unnamed_number && *p.port != *unnamed_number) continue;
      target = p.port;
      break;
    }
    if (!target) continue;
    for (const SliceEndpoint& se : slice.endpoints) {
      // Addresses of one endpoint are fungible; consumers use the first (as kube-proxy does).
      if (se.addresses.empty()) continue;
      out.push_back(Endpoint{.address = se.addresses.front(),
                             .port = *target,
                             .pod_name = se.pod_name,
                             .node_name = se.node_name,
                             .zone = se.zone,
                             .ready = se.ready,
                             .serving = se.serving,
                             .terminating = se.terminating});
    }
  }
  return out;
}

std::vector<Publication> ServiceState::Build() const {
  std::vector<Publication> out;
  auto key = [&](const std::string& port) { return ServiceKey{ns_, name_, port}; };
  std::map<std::string, std::string> annotations;
  if (service_) {
    annotations = service_->annotations;
    for (const ServicePort& sp : service_->ports) {
      Publication pub;
      const std::string number = std::to_string(sp.port);
      if (!sp.name.empty()) pub.keys.push_back(key(sp.name));
      pub.keys.push_back(key(number));
      pub.endpoints = EndpointsForPort(sp.name, std::nullopt);
      pub.annotations = annotations;
      out.push_back(std::move(pub));
    }
    return out;
  }
  // No Service yet: publish what the slices say, and re-publish properly when it arrives.
  std::set<std::string> named;
  std::set<uint16_t> unnamed;
  for (const auto& [slice_name, slice] : slices_) {
    for (const SlicePort& p : slice.ports) {
      if (!p.port) continue;
      if (p.name.empty())
        unnamed.insert(*p.port);
      else
        named.insert(p.name);
    }
  }
  for (const std::string& name : named)
    out.push_back(Publication{{key(name)}, EndpointsForPort(name, std::nullopt), {}});
  for (uint16_t number : unnamed)
    out.push_back(Publication{{key(std::to_string(number))}, EndpointsForPort("", number), {}});
  return out;
}

std::vector<Publication> ServiceState::TakePublications() {
  std::vector<Publication> out = Build();
  std::set<ServiceKey> now;
  for (const Publication& pub : out) now.insert(pub.keys.begin(), pub.keys.end());
  for (const ServiceKey& old : published_)
    if (!now.count(old)) out.push_back(Publication{{old}, {}, {}, /*removed=*/true});
  published_ = std::move(now);
  return out;
}

}  // namespace podlb
