#include "discovery/dns/dns_source.h"

namespace podlb {

DnsSource::DnsSource(DnsSourceOptions options, std::unique_ptr<DnsResolver> resolver,
                     Registry& registry)
    : options_(std::move(options)), resolver_(std::move(resolver)), registry_(registry) {}

DnsSource::~DnsSource() { Stop(); }

absl::Status DnsSource::Start() {
  if (options_.host.empty() || options_.port == 0)
    return absl::InvalidArgumentError("dns: need a host name and a port (DnsSourceOptions::host and ::port)");
  thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void DnsSource::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool DnsSource::HasSynced() const {
  absl::MutexLock lock(&mu_);
  return synced_;
}

absl::Status DnsSource::Health() const {
  absl::MutexLock lock(&mu_);
  return health_;
}

void DnsSource::ResolveOnce() {
  auto addresses = resolver_->Resolve(options_.host);
  if (!addresses.ok()) {
    // Every failure, NXDOMAIN included, keeps the last good set: a DNS outage or a resolver that
    // briefly answers nothing must not take every pod out of service (grpc's dns resolver does
    // the same). An empty Service is seen through the API source, which has the authority.
    failure_log_.Log(std::string(addresses.status().message()) +
                     "; keeping the last known endpoints");
    absl::MutexLock lock(&mu_);
    health_ = addresses.status();
    return;
  }
  std::vector<Endpoint> endpoints;
  endpoints.reserve(addresses->size());
  for (auto& address : *addresses) {
    endpoints.push_back(Endpoint{.address = std::move(address),
                                 .port = options_.port,
                                 .ready = true,
                                 .serving = true});
  }
  registry_.Publish({options_.key}, std::move(endpoints));
  failure_log_.Clear("dns: resolving " + options_.host + " works again");
  absl::MutexLock lock(&mu_);
  health_ = absl::OkStatus();
  synced_ = true;
}

void DnsSource::Loop() {
  while (true) {
    ResolveOnce();
    absl::MutexLock lock(&mu_);
    // Wait for the interval or Stop(), whichever comes first.
    mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(options_.interval));
    if (stopping_) return;
  }
}

}  // namespace podlb
