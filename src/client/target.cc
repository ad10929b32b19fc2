#include "client/target.h"

#include "core/host_port.h"

namespace podlb::client {
namespace {

constexpr char kUsage[] =
    "; write kubernetes:///NAME.NAMESPACE:PORT, dns:///HOST:PORT or "
    "file:///PATH#NAMESPACE/NAME:PORT";

absl::Status Bad(const std::string& target, const std::string& why) {
  return absl::InvalidArgumentError("podlb target \"" + target + "\": " + why + kUsage);
}

bool StripPrefix(std::string& text, const std::string& prefix) {
  if (text.rfind(prefix, 0) != 0) return false;
  text.erase(0, prefix.size());
  return true;
}

}  // namespace

absl::StatusOr<ParsedTarget> ParseTarget(const std::string& target,
                                         const std::string& default_namespace) {
  std::string rest = target;
  ParsedTarget out;
  if (StripPrefix(rest, "kubernetes:///") || StripPrefix(rest, "kubernetes://") ||
      StripPrefix(rest, "kubernetes:")) {
    out.scheme = ParsedTarget::Scheme::kKubernetes;
    auto key = ServiceKey::Parse(rest, default_namespace);
    if (!key.ok()) return Bad(target, std::string(key.status().message()));
    out.key = *key;
    return out;
  }
  if (StripPrefix(rest, "dns:///")) {
    out.scheme = ParsedTarget::Scheme::kDns;
    auto host_port = ParseHostPort(rest);
    if (!host_port.ok())
      return Bad(target, "dns targets need HOST:PORT: " + std::string(host_port.status().message()));
    if (host_port->port == 0) return Bad(target, "dns targets need a port other than 0");
    out.host = host_port->host;
    out.port = host_port->port;
    out.key = ServiceKey{"dns", out.host, std::to_string(out.port)};
    return out;
  }
  if (StripPrefix(rest, "file://")) {
    out.scheme = ParsedTarget::Scheme::kFile;
    size_t hash = rest.find('#');
    if (hash == std::string::npos || hash + 1 == rest.size())
      return Bad(target, "file targets name the service after '#'");
    out.path = rest.substr(0, hash);
    if (out.path.empty() || out.path[0] != '/') return Bad(target, "the file path must be absolute");
    auto key = ServiceKey::Parse(rest.substr(hash + 1), default_namespace);
    if (!key.ok()) return Bad(target, std::string(key.status().message()));
    out.key = *key;
    return out;
  }
  return Bad(target, "unknown scheme");
}

}  // namespace podlb::client
