// DnsServer: a real dnsmasq (Debian's dnsmasq-base) on a loopback address and port, answering
// the headless Service name with one A record per ready pod. The demo rewrites its hosts file and
// sends SIGHUP whenever the ready pods change, as CoreDNS follows EndpointSlices. Start/Stop from
// one control thread; SetAddresses from any thread (serialized internally with Start and Stop).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "process/child_process.h"

namespace podlb::demo {

class PortReservation;

struct DnsServerOptions {
  std::string name;  // the FQDN served, e.g. greeter.default.svc.cluster.local
  std::string dir;   // where its hosts file goes
  // An IPv4 loopback address. The demo gives dnsmasq one of its own, which no pod, forwarder
  // or outgoing connection uses, so only another DNS server could want the same port on it.
  std::string listen_ip = "127.0.0.1";
  // 0: a port free in both TCP and UDP, held until dnsmasq has bound it. Tests set one to
  // provoke a collision.
  int port = 0;
};

class DnsServer {
 public:
  explicit DnsServer(DnsServerOptions options);
  ~DnsServer();  // Stop
  DnsServer(const DnsServer&) = delete;
  DnsServer& operator=(const DnsServer&) = delete;

  // Starts dnsmasq with `addresses` (at least one) and returns once that very process answers
  // an A/AAAA lookup of the name with exactly them, over UDP and over TCP (gRPC's c-ares
  // resolver may use either). On failure the error carries dnsmasq's own log.
  absl::Status Start(const std::vector<std::string>& addresses);
  // Rewrites the hosts file and makes dnsmasq re-read it (SIGHUP).
  void SetAddresses(const std::vector<std::string>& addresses);
  void Stop();

  std::string server() const;  // "IP:PORT"

 private:
  // One dnsmasq on `port`. Sets `port_taken` when dnsmasq exited because the port was in use.
  absl::Status StartOnceLocked(int port, PortReservation* reservation,
                               const std::vector<std::string>& expected, bool* port_taken)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status WriteHostsLocked(const std::vector<std::string>& addresses)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stops dnsmasq and returns `error` with what dnsmasq logged appended.
  absl::Status FailLocked(const absl::Status& error) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const DnsServerOptions options_;
  const std::string hosts_path_;
  absl::Mutex mu_;
  std::unique_ptr<ChildProcess> dnsmasq_ ABSL_GUARDED_BY(mu_);
  int port_ = 0;  // set by Start, read after it
};

}  // namespace podlb::demo
