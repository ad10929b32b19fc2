#include "demo/dns_server.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "demo/port_reservation.h"
#include "discovery/dns/dns_resolver.h"

namespace podlb::demo {
namespace {

// dnsmasq needs well under a second; the rest is room for a loaded two-core machine.
constexpr auto kStartTimeout = std::chrono::seconds(10);
constexpr auto kQueryTimeout = std::chrono::seconds(2);
// Only a definite "Address already in use" from dnsmasq makes Start choose another port, and a
// reserved port leaves that to another DNS server binding the same address at the same moment.
constexpr int kPortAttempts = 3;
constexpr size_t kLogLinesInErrors = 8;

std::string DnsmasqBinary() {
  // Debian puts it in /usr/sbin, which is not on every user's PATH.
  return access("/usr/sbin/dnsmasq", X_OK) == 0 ? "/usr/sbin/dnsmasq" : "dnsmasq";
}

// Asks the server at `address` for `name` (A and AAAA, as gRPC's c-ares resolver does) over one
// transport; OK only when the answer is exactly `expected`.
absl::Status ExpectAnswer(const std::string& address, const std::string& name, bool use_tcp,
                          const std::vector<std::string>& expected) {
  const char* transport = use_tcp ? "TCP" : "UDP";
  auto resolver = MakeCaresResolver(
      {.servers = address, .timeout = kQueryTimeout, .tries = 1, .use_tcp = use_tcp});
  if (!resolver.ok()) return resolver.status();
  // The trailing dot makes the name absolute: no search domain of resolv.conf is tried first.
  auto answer = (*resolver)->Resolve(name + ".");
  if (!answer.ok()) {
    return absl::UnavailableError(absl::StrCat("dns: dnsmasq on ", address,
                                               " did not answer a lookup of ", name, " over ",
                                               transport, ": ", answer.status().message()));
  }
  if (*answer != expected) {
    return absl::UnavailableError(absl::StrCat(
        "dns: the server on ", address, " answered ", name, " over ", transport, " with [",
        absl::StrJoin(*answer, " "), "], not with the [", absl::StrJoin(expected, " "),
        "] written for dnsmasq: another DNS server holds the port"));
  }
  return absl::OkStatus();
}

}  // namespace

DnsServer::DnsServer(DnsServerOptions options)
    : options_(std::move(options)), hosts_path_(options_.dir + "/hosts") {}

DnsServer::~DnsServer() { Stop(); }

std::string DnsServer::server() const { return absl::StrCat(options_.listen_ip, ":", port_); }

absl::Status DnsServer::WriteHostsLocked(const std::vector<std::string>& addresses) {
  std::string tmp = hosts_path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    for (const auto& a : addresses) out << a << " " << options_.name << "\n";
    if (!out) return absl::InternalError("dns: cannot write " + tmp);
  }
  // rename is atomic: dnsmasq never reads half a file.
  if (std::rename(tmp.c_str(), hosts_path_.c_str()) != 0) {
    return absl::InternalError("dns: cannot rename " + tmp);
  }
  return absl::OkStatus();
}

absl::Status DnsServer::Start(const std::vector<std::string>& addresses) {
  if (addresses.empty()) {
    return absl::InvalidArgumentError(
        "dns: Start needs at least one address: readiness is dnsmasq answering with them");
  }
  std::vector<std::string> expected = addresses;
  std::sort(expected.begin(), expected.end());
  expected.erase(std::unique(expected.begin(), expected.end()), expected.end());
  absl::MutexLock lock(&mu_);
  if (dnsmasq_) return absl::FailedPreconditionError("dns: already started");
  if (auto status = WriteHostsLocked(addresses); !status.ok()) return status;
  absl::Status status;
  for (int attempt = 0; attempt < kPortAttempts; ++attempt) {
    std::optional<PortReservation> reservation;
    int port = options_.port;
    if (port == 0) {
      auto reserved =
          PortReservation::Reserve(options_.listen_ip, PortReservation::Protocols::kTcpAndUdp);
      if (!reserved.ok()) return reserved.status();
      reservation.emplace(std::move(*reserved));
      port = reservation->port();
    }
    bool port_taken = false;
    status = StartOnceLocked(port, reservation ? &*reservation : nullptr, expected, &port_taken);
    if (status.ok() || !port_taken || options_.port != 0) return status;
  }
  return status;
}

absl::Status DnsServer::StartOnceLocked(int port, PortReservation* reservation,
                                        const std::vector<std::string>& expected,
                                        bool* port_taken) {
  std::string address = absl::StrCat(options_.listen_ip, ":", port);
  std::vector<std::string> args = {
      DnsmasqBinary(), "--keep-in-foreground", absl::StrCat("--port=", port),
      "--listen-address=" + options_.listen_ip, "--bind-interfaces", "--no-resolv", "--no-hosts",
      "--addn-hosts=" + hosts_path_, "--local-ttl=0", "--pid-file=",
      // Its log is read below (readiness, and errors that quote it).
      "--log-facility=-"};
  // As root dnsmasq would drop to user "nobody", which may not read our files.
  if (geteuid() == 0) args.push_back("--user=root");
  dnsmasq_ = std::make_unique<ChildProcess>();
  // The C locale keeps the log lines matched below in English.
  if (auto status = dnsmasq_->Start(args, {.capture_stderr = true, .env = {"LC_ALL=C"}});
      !status.ok()) {
    dnsmasq_.reset();
    return status;
  }
  // dnsmasq binds UDP, then TCP (exiting if either fails), then reads the hosts file and logs
  // "read <file>": from that line on it holds the port and knows the addresses.
  const std::string read_hosts = "read " + hosts_path_;
  auto line = dnsmasq_->WaitForLine(
      [&](const std::string& l) { return absl::StrContains(l, read_hosts); }, kStartTimeout);
  // The held sockets share the port with dnsmasq's and could receive a query meant for it.
  if (reservation) reservation->Release();
  if (!line) {
    bool exited = dnsmasq_->WaitForExit(std::chrono::milliseconds(0));
    if (!exited) {
      return FailLocked(absl::DeadlineExceededError(absl::StrCat(
          "dns: dnsmasq on ", address, " did not finish starting within ",
          std::chrono::duration_cast<std::chrono::seconds>(kStartTimeout).count(), " s")));
    }
    dnsmasq_->Stop();  // reaps it: the exit status is in wait_status()
    int wait_status = dnsmasq_->wait_status();
    if (WIFEXITED(wait_status) && WEXITSTATUS(wait_status) == 127) {
      dnsmasq_.reset();
      return absl::FailedPreconditionError(
          "dns: cannot run dnsmasq: install Debian's dnsmasq-base (scripts/bootstrap.sh does)");
    }
    std::vector<std::string> lines = dnsmasq_->Lines();
    *port_taken = std::any_of(lines.begin(), lines.end(), [](const std::string& l) {
      return absl::StrContains(l, "Address already in use");
    });
    return FailLocked(absl::UnavailableError(
        absl::StrCat("dns: dnsmasq on ", address, " ", DescribeWaitStatus(wait_status), " at start",
                     *port_taken ? " (another socket holds the port)" : "")));
  }
  // Ready means answering, the way the demo's clients will ask.
  for (bool use_tcp : {false, true}) {
    if (auto status = ExpectAnswer(address, options_.name, use_tcp, expected); !status.ok()) {
      return FailLocked(status);
    }
  }
  if (!dnsmasq_->Running()) {
    return FailLocked(absl::UnavailableError(
        absl::StrCat("dns: dnsmasq on ", address, " ", DescribeWaitStatus(dnsmasq_->wait_status()),
                     " right after answering")));
  }
  port_ = port;
  return absl::OkStatus();
}

absl::Status DnsServer::FailLocked(const absl::Status& error) {
  dnsmasq_->Stop();
  std::vector<std::string> lines = dnsmasq_->Lines();
  dnsmasq_.reset();
  // dnsmasq prints an empty line before a fatal error.
  lines.erase(std::remove(lines.begin(), lines.end(), std::string()), lines.end());
  if (lines.size() > kLogLinesInErrors) {
    lines.erase(lines.begin(), lines.end() - static_cast<std::ptrdiff_t>(kLogLinesInErrors));
  }
  std::string log = lines.empty() ? "nothing" : absl::StrJoin(lines, " | ");
  return absl::Status(error.code(), absl::StrCat(error.message(), "; dnsmasq logged: ", log));
}

void DnsServer::SetAddresses(const std::vector<std::string>& addresses) {
  absl::MutexLock lock(&mu_);
  if (!dnsmasq_) return;
  if (WriteHostsLocked(addresses).ok()) dnsmasq_->Signal(SIGHUP);
}

void DnsServer::Stop() {
  absl::MutexLock lock(&mu_);
  if (!dnsmasq_) return;
  dnsmasq_->Stop();
  dnsmasq_.reset();
}

}  // namespace podlb::demo
