// DnsSource: re-resolves a headless Service name every `interval` and publishes the addresses
// as ready endpoints under one ServiceKey. For users without API access. Owns one thread;
// Start/Stop from the control thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "core/logging.h"
#include "core/registry.h"
#include "discovery/dns/dns_resolver.h"
#include "discovery/source.h"

namespace podlb {

struct DnsSourceOptions {
  std::string host;     // e.g. greeter.default.svc.cluster.local
  uint16_t port = 0;    // the port every endpoint gets
  ServiceKey key;       // where to publish
  std::chrono::milliseconds interval{std::chrono::seconds(5)};
};

class DnsSource : public EndpointSource {
 public:
  DnsSource(DnsSourceOptions options, std::unique_ptr<DnsResolver> resolver, Registry& registry);
  ~DnsSource() override;

  absl::Status Start() override;
  void Stop() override;
  bool HasSynced() const override;
  absl::Status Health() const override;
  std::string Name() const override { return "dns"; }

  // One resolution and publication, on the caller's thread (the loop calls it; tests too).
  void ResolveOnce();

 private:
  void Loop();

  const DnsSourceOptions options_;
  std::unique_ptr<DnsResolver> resolver_;
  Registry& registry_;
  LogOnChange failure_log_{LogLevel::kWarn};
  std::thread thread_;
  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status health_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb
