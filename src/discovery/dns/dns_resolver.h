// DnsResolver: resolves one host name to its A and AAAA addresses. An interface so the DNS
// source can be tested with a scripted resolver; CaresResolver is the real one. Resolve() is
// called from the DNS source's thread only.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace podlb {

class DnsResolver {
 public:
  virtual ~DnsResolver() = default;
  // The IP literals `name` resolves to (A and AAAA), sorted. NotFound for NXDOMAIN or no records,
  // Unavailable for SERVFAIL, refusal or timeout.
  virtual absl::StatusOr<std::vector<std::string>> Resolve(const std::string& name) = 0;
};

struct CaresResolverOptions {
  // "host:port[,host:port]" DNS servers; empty uses /etc/resolv.conf.
  std::string servers;
  std::chrono::milliseconds timeout{2000};
  int tries = 2;
  // Ask over TCP instead of UDP (c-ares' ARES_FLAG_USEVC). A client falls back to TCP when an
  // answer is truncated, so a server that claims to serve must answer on both.
  bool use_tcp = false;
};

absl::StatusOr<std::unique_ptr<DnsResolver>> MakeCaresResolver(const CaresResolverOptions& options);

}  // namespace podlb
