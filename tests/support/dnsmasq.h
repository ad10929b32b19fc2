// Dnsmasq: a real DNS server (Debian's dnsmasq) on a free loopback port, answering
// greeter.default.svc.cluster.local from a hosts file the test rewrites and then Reload()s
// (SIGHUP makes dnsmasq re-read it). Test thread only; killed on destruction.
#pragma once

#include <signal.h>

#include <memory>
#include <string>
#include <vector>

#include "support/process.h"

namespace podlb::testing {

class Dnsmasq {
 public:
  Dnsmasq(const std::string& dir, const std::vector<std::string>& addresses) : dir_(dir) {
    port_ = PickFreePort();
    WriteHosts(addresses);
    process_ = std::make_unique<ChildProcess>(std::vector<std::string>{
        "dnsmasq", "--keep-in-foreground", "--port=" + std::to_string(port_),
        "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv", "--no-hosts",
        "--addn-hosts=" + dir_ + "/hosts", "--user=root", "--pid-file=", "--log-facility=-"});
  }
  void WriteHosts(const std::vector<std::string>& addresses) {
    std::string content;
    for (const auto& a : addresses) content += a + " greeter.default.svc.cluster.local\n";
    WriteFile(dir_ + "/hosts", content);
  }
  void Reload() { kill(process_->pid(), SIGHUP); }
  void Kill() { process_.reset(); }
  std::string server() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  std::string dir_;
  int port_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace podlb::testing
