// c-ares behind DnsResolver. One ares channel per resolver, driven synchronously with poll():
// the DNS source resolves one name every few seconds on its own thread, so an event loop would
// add nothing.
#include <arpa/inet.h>
#include <ares.h>
#include <poll.h>

#include <algorithm>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "discovery/dns/dns_resolver.h"

namespace podlb {
namespace {

class CaresLibrary {
 public:
  // ares_library_init is process-wide and not thread-safe; do it once.
  static absl::Status EnsureInitialized() {
    static const int rc = ares_library_init(ARES_LIB_INIT_ALL);
    if (rc != ARES_SUCCESS)
      return absl::InternalError(absl::StrCat("c-ares init failed: ", ares_strerror(rc)));
    return absl::OkStatus();
  }
};

struct QueryResult {
  bool done = false;
  int status = ARES_SUCCESS;
  std::vector<std::string> addresses;
};

void OnAddrInfo(void* arg, int status, int /*timeouts*/, struct ares_addrinfo* result) {
  auto* out = static_cast<QueryResult*>(arg);
  out->done = true;
  out->status = status;
  if (status != ARES_SUCCESS || result == nullptr) return;
  for (auto* node = result->nodes; node != nullptr; node = node->ai_next) {
    char text[INET6_ADDRSTRLEN] = {};
    if (node->ai_family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(node->ai_addr)->sin_addr, text, sizeof text);
    } else if (node->ai_family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(node->ai_addr)->sin6_addr, text,
                sizeof text);
    } else {
      continue;
    }
    out->addresses.emplace_back(text);
  }
  ares_freeaddrinfo(result);
}

class CaresResolver : public DnsResolver {
 public:
  explicit CaresResolver(ares_channel channel) : channel_(channel) {}
  ~CaresResolver() override { ares_destroy(channel_); }

  absl::StatusOr<std::vector<std::string>> Resolve(const std::string& name) override {
    QueryResult result;
    ares_addrinfo_hints hints{};
    hints.ai_family = AF_UNSPEC;  // A and AAAA
    hints.ai_flags = ARES_AI_NOSORT;
    ares_getaddrinfo(channel_, name.c_str(), nullptr, &hints, &OnAddrInfo, &result);
    while (!result.done) {
      ares_socket_t socks[ARES_GETSOCK_MAXNUM];
      int bitmask = ares_getsock(channel_, socks, ARES_GETSOCK_MAXNUM);
      std::vector<pollfd> fds;
      for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
        short events = 0;
        if (ARES_GETSOCK_READABLE(bitmask, i)) events |= POLLIN;
        if (ARES_GETSOCK_WRITABLE(bitmask, i)) events |= POLLOUT;
        if (events) fds.push_back({socks[i], events, 0});
      }
      timeval tv{};
      timeval* tvp = ares_timeout(channel_, nullptr, &tv);
      int timeout_ms = tvp ? static_cast<int>(tvp->tv_sec * 1000 + tvp->tv_usec / 1000) : 1000;
      int n = poll(fds.data(), fds.size(), timeout_ms);
      if (n <= 0) {
        ares_process_fd(channel_, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
        continue;
      }
      for (const auto& fd : fds) {
        ares_process_fd(channel_, (fd.revents & (POLLIN | POLLERR | POLLHUP)) ? fd.fd : ARES_SOCKET_BAD,
                        (fd.revents & POLLOUT) ? fd.fd : ARES_SOCKET_BAD);
      }
    }
    switch (result.status) {
      case ARES_SUCCESS:
        break;
      case ARES_ENOTFOUND:
      case ARES_ENODATA:
        return absl::NotFoundError(absl::StrCat("dns: ", name, " has no A/AAAA records (NXDOMAIN or no data)"));
      default:
        return absl::UnavailableError(absl::StrCat("dns: resolving ", name, " failed: ",
                                                   ares_strerror(result.status)));
    }
    std::sort(result.addresses.begin(), result.addresses.end());
    result.addresses.erase(std::unique(result.addresses.begin(), result.addresses.end()),
                           result.addresses.end());
    if (result.addresses.empty())
      return absl::NotFoundError(absl::StrCat("dns: ", name, " has no A/AAAA records"));
    return result.addresses;
  }

 private:
  ares_channel channel_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<DnsResolver>> MakeCaresResolver(const CaresResolverOptions& options) {
  if (auto status = CaresLibrary::EnsureInitialized(); !status.ok()) return status;
  ares_options opts{};
  int mask = ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES | ARES_OPT_LOOKUPS;
  opts.timeout = static_cast<int>(options.timeout.count());
  opts.tries = options.tries;
  if (options.use_tcp) {
    mask |= ARES_OPT_FLAGS;
    opts.flags = ARES_FLAG_USEVC;
  }
  // DNS only: /etc/hosts must not shadow what the cluster DNS says about a Service.
  char lookups[] = "b";
  opts.lookups = lookups;
  ares_channel channel;
  int rc = ares_init_options(&channel, &opts, mask);
  if (rc != ARES_SUCCESS)
    return absl::InternalError(absl::StrCat("dns: c-ares channel: ", ares_strerror(rc)));
  if (!options.servers.empty()) {
    rc = ares_set_servers_ports_csv(channel, options.servers.c_str());
    if (rc != ARES_SUCCESS) {
      ares_destroy(channel);
      return absl::InvalidArgumentError(absl::StrCat("dns: bad CaresResolverOptions::servers \"", options.servers,
                                                     "\": ", ares_strerror(rc),
                                                     "; write host:port[,host:port]"));
    }
  }
  return std::unique_ptr<DnsResolver>(new CaresResolver(channel));
}

}  // namespace podlb
