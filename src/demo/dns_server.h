// DnsServer: a real dnsmasq (Debian's dnsmasq-base) on a loopback port, answering the headless
// Service name with one A record per ready pod. The demo rewrites its hosts file and sends SIGHUP
// whenever the ready pods change, as CoreDNS follows EndpointSlices. Start/Stop and
// SetAddresses from any one thread at a time (SetAddresses is serialized internally).
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace podlb::demo {

class DnsServer {
 public:
  // `name`: the FQDN served, e.g. greeter.default.svc.cluster.local; files go under `dir`.
  DnsServer(std::string name, std::string dir);
  ~DnsServer();  // Stop
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Starts dnsmasq with `addresses` and returns once it serves its port.
  absl::Status Start(const std::vector<std::string>& addresses);
  // Rewrites the hosts file and makes dnsmasq re-read it (SIGHUP).
  void SetAddresses(const std::vector<std::string>& addresses);
  void Stop();

  std::string server() const;  // "127.0.0.1:PORT"

 private:
  absl::Status StartOnce(const std::vector<std::string>& addresses);
  absl::Status WriteHostsLocked(const std::vector<std::string>& addresses)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string name_;
  const std::string dir_;
  absl::Mutex mu_;
  pid_t pid_ ABSL_GUARDED_BY(mu_) = -1;
  int port_ = 0;  // set by Start, read after it on the same thread (server())
};

}  // namespace podlb::demo
