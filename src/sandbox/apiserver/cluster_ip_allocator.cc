#include "sandbox/apiserver/cluster_ip_allocator.h"

#include <arpa/inet.h>

#include <optional>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "sandbox/apiserver/json_path.h"
#include "sandbox/apiserver/object_validation.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;


std::optional<uint32_t> ParseIpv4(const std::string& text) {
  in_addr addr{};
  if (inet_pton(AF_INET, text.c_str(), &addr) != 1) return std::nullopt;
  return ntohl(addr.s_addr);
}

std::string FormatIpv4(uint32_t ip) {
  return absl::StrCat(ip >> 24, ".", (ip >> 16) & 0xff, ".", (ip >> 8) & 0xff, ".", ip & 0xff);
}

// Go's %#v of a []string, as the real server prints spec.clusterIPs in its errors.
std::string GoStringSlice(const std::vector<std::string>& values) {
  std::vector<std::string> quoted;
  for (const auto& v : values) quoted.push_back(json(v).dump());
  return absl::StrCat("[]string{", absl::StrJoin(quoted, ", "), "}");
}

// The address a Service asks for: spec.clusterIP, else spec.clusterIPs[0]; "" for none.
std::string RequestedIp(const json& service) {
  const json& ip = At(service, {"spec", "clusterIP"});
  if (ip.is_string() && !ip.get<std::string>().empty()) return ip.get<std::string>();
  const json& ips = At(service, {"spec", "clusterIPs"});
  if (ips.is_array() && !ips.empty() && ips[0].is_string()) return ips[0].get<std::string>();
  return "";
}

std::vector<std::string> ClusterIps(const json& service) {
  std::vector<std::string> out;
  const json& ips = At(service, {"spec", "clusterIPs"});
  if (ips.is_array()) {
    for (const auto& ip : ips) out.push_back(ip.is_string() ? ip.get<std::string>() : ip.dump());
  }
  if (out.empty()) {
    std::string ip = RequestedIp(service);
    if (!ip.empty()) out.push_back(ip);
  }
  return out;
}

bool IsExternalName(const json& service) { return At(service, {"spec", "type"}) == "ExternalName"; }

absl::Status Invalid(const std::string& name, std::vector<FieldCause> causes) {
  return InvalidObjectError(*FindResourceType("", "services"), name, causes);
}

void WriteAddress(json& service, const std::string& ip) {
  json& spec = service["spec"];
  spec["clusterIP"] = ip;
  spec["clusterIPs"] = json::array({ip});
  if (ip == "None") {
    // A headless Service still gets its families defaulted, as on a real cluster.
    if (!spec.contains("ipFamilies")) spec["ipFamilies"] = json::array({"IPv4"});
    if (!spec.contains("ipFamilyPolicy")) spec["ipFamilyPolicy"] = "SingleStack";
    return;
  }
  spec["ipFamilies"] = json::array({"IPv4"});
  spec["ipFamilyPolicy"] = "SingleStack";
}

}  // namespace

absl::StatusOr<ServiceCidr> ParseServiceCidr(const std::string& text) {
  auto slash = text.find('/');
  std::optional<uint32_t> base = ParseIpv4(text.substr(0, slash));
  int prefix = 0;
  if (slash == std::string::npos || !base ||
      !absl::SimpleAtoi(text.substr(slash + 1), &prefix) || prefix < 16 || prefix > 29) {
    return absl::InvalidArgumentError(absl::StrCat(
        "service CIDR \"", text, "\": want a loopback IPv4 block of /16 to /29, e.g. ",
        kServiceCidr));
  }
  const uint32_t size = 1u << (32 - prefix);
  if ((*base >> 24) != 127 || (*base & (size - 1)) != 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "service CIDR \"", text, "\": ",
        (*base >> 24) != 127 ? "must be in 127.0.0.0/8 (its addresses are listened on here)"
                             : "the address has host bits set"));
  }
  return ServiceCidr{.base = *base, .size = size, .text = text};
}

ClusterIpAllocator::ClusterIpAllocator(const ServiceCidr& cidr)
    : cidr_(cidr.text),
      first_(cidr.base + 1),
      last_(cidr.base + cidr.size - 2),
      next_(cidr.base + 1) {}

absl::Status ClusterIpAllocator::Allocate(const std::string& name, json& service) {
  if (!service.is_object() || IsExternalName(service)) return absl::OkStatus();
  if (!service.contains("spec") || !service["spec"].is_object()) service["spec"] = json::object();
  std::string requested = RequestedIp(service);
  if (requested == "None") {
    WriteAddress(service, "None");
    return absl::OkStatus();
  }
  if (!requested.empty()) {
    std::vector<std::string> ips = ClusterIps(service);
    std::optional<uint32_t> ip = ParseIpv4(requested);
    if (!ip) {
      return Invalid(name, {{"spec.clusterIPs[0]",
                             absl::StrCat("Invalid value: ", json(requested).dump(),
                                          ": must be a valid IP address, (e.g. 10.9.8.7 or "
                                          "2001:db8::ffff)")}});
    }
    std::string prefix = absl::StrCat("Invalid value: ", GoStringSlice(ips),
                                      ": failed to allocate IP ", requested, ": ");
    if (*ip < first_ || *ip > last_) {
      return Invalid(name, {{"spec.clusterIPs",
                             absl::StrCat(prefix, "the provided IP (", requested,
                                          ") is not in the valid range. The range of valid IPs "
                                          "is ",
                                          cidr_)}});
    }
    if (allocated_.count(*ip) > 0) {
      return Invalid(
          name, {{"spec.clusterIPs", absl::StrCat(prefix, "provided IP is already allocated")}});
    }
    allocated_.insert(*ip);
    WriteAddress(service, FormatIpv4(*ip));
    return absl::OkStatus();
  }
  const uint32_t size = last_ - first_ + 1;
  for (uint32_t i = 0; i < size; ++i) {
    uint32_t ip = first_ + (next_ - first_ + i) % size;
    if (allocated_.count(ip) > 0) continue;
    allocated_.insert(ip);
    next_ = ip == last_ ? first_ : ip + 1;
    WriteAddress(service, FormatIpv4(ip));
    return absl::OkStatus();
  }
  // As the real server answers a full range: 500, not 422 (nothing is wrong with the object).
  return absl::InternalError(
      absl::StrCat("Internal error occurred: failed to allocate a serviceIP: range is full (",
                   cidr_, " holds ", size,
                   " addresses; make Services that need no ClusterIP headless, clusterIP: "
                   "None)"));
}

absl::Status ClusterIpAllocator::CarryOver(const std::string& name, const json& current,
                                           json& updated) const {
  if (!updated.is_object()) return absl::OkStatus();
  std::string old_ip = RequestedIp(current);
  if (old_ip.empty()) return absl::OkStatus();
  std::string new_ip = RequestedIp(updated);
  if (new_ip.empty()) {
    // As the real server's patchAllocatedValues: a write that omits the address (a PUT of the
    // manifest, a server-side apply) keeps the one allocated.
    json& spec = updated["spec"];
    if (!spec.is_object()) spec = json::object();
    for (const char* field : {"clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy"}) {
      const json& value = At(current, {"spec", field});
      if (!value.is_null() && (!spec.contains(field) || spec[field].is_null() ||
                               spec[field] == "" || spec[field] == json::array())) {
        spec[field] = value;
      }
    }
    return absl::OkStatus();
  }
  if (new_ip == old_ip) return absl::OkStatus();
  return Invalid(name, {{"spec.clusterIPs[0]",
                         absl::StrCat("Invalid value: ", GoStringSlice(ClusterIps(updated)),
                                      ": may not change once set")}});
}

void ClusterIpAllocator::Release(const json& service) {
  std::optional<uint32_t> ip = ParseIpv4(RequestedIp(service));
  if (ip) allocated_.erase(*ip);
}

}  // namespace podlb::sandbox
