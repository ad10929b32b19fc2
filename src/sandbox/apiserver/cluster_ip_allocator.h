// ClusterIpAllocator: the API server's Service IP range, as the real server's Service REST
// storage holds it. On create it gives a Service without spec.clusterIP the next free address
// of the range (or the one the Service asks for) and fills the fields the real server defaults
// with it (clusterIPs, ipFamilies, ipFamilyPolicy); on update it keeps the address (an update
// that omits it inherits it, one that changes it is refused); on delete it frees it.
// The sandbox's range is 127.0.96.0/22: loopback, clear of the pods (127.0.0.2 upward) and of
// the demo's own addresses (127.0.100.1, 127.0.101.1), so a ServiceProxy can listen on it.
// Not thread-safe: the ResourceStore calls it under its lock, so allocating is atomic with the
// write that records the address.
#pragma once

#include <cstdint>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace podlb::sandbox {

inline constexpr char kServiceCidr[] = "127.0.96.0/22";

// A Service IP range: a loopback IPv4 block of /16 to /29 (the ServiceProxy listens on its
// addresses, so they must be this machine's). Sandboxes that run at once on one machine need
// ranges of their own (`podlb sandbox --service-cidr`), or they would listen on the same
// addresses.
struct ServiceCidr {
  uint32_t base = 0;  // network address, host order
  uint32_t size = 0;  // addresses in the block
  std::string text;   // as given, for messages
};
absl::StatusOr<ServiceCidr> ParseServiceCidr(const std::string& text);

class ClusterIpAllocator {
 public:
  // `cidr` from ParseServiceCidr; the default is kServiceCidr.
  explicit ClusterIpAllocator(const ServiceCidr& cidr = *ParseServiceCidr(kServiceCidr));

  // Create of Service `name`: allocates its address and writes it into `service`. On refusal
  // `service` is left as it was and the error is the real server's: InvalidArgument worded by
  // InvalidObjectError (422: the requested address is taken, outside the range, not an IP), or
  // Internal (500) when the range is full. Headless (clusterIP "None") and ExternalName
  // Services get no address.
  absl::Status Allocate(const std::string& name, nlohmann::json& service);
  // Update from `current` to `updated`: an update without an address inherits the current one;
  // a different address is refused (422 "may not change once set").
  absl::Status CarryOver(const std::string& name, const nlohmann::json& current,
                         nlohmann::json& updated) const;
  // Delete: frees the Service's address, if it holds one of the range.
  void Release(const nlohmann::json& service);

  size_t allocated() const { return allocated_.size(); }

 private:
  const std::string cidr_;
  const uint32_t first_;  // the range without its network and broadcast addresses
  const uint32_t last_;
  std::set<uint32_t> allocated_;
  // Where the search for a free address starts: after the last one given, so an address freed a
  // moment ago is not handed at once to another Service while clients still dial it.
  uint32_t next_;
};

}  // namespace podlb::sandbox
