// ProxyServer: the `podlb proxy` data plane — N workers sharing SO_REUSEPORT listeners, fed by
// a Registry that discovery publishes into. Start/Drain/Stop from one control thread; Ready,
// stats and the debug dump from any thread (the admin server's).
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/registry.h"
#include "proxy/proxy_options.h"
#include "proxy/proxy_stats.h"
#include "proxy/service_balancers.h"

namespace podlb::proxy {

class Worker;

class ProxyServer {
 public:
  ProxyServer(ProxyOptions options, Registry& registry);
  ~ProxyServer();  // Stop()

  // Binds every listener (errors name the address) and starts the workers.
  absl::Status Start();
  // The bound port of each listener, in options order.
  const std::vector<uint16_t>& ports() const { return ports_; }
  // SIGTERM: two-step GOAWAY on every connection, waits until no stream is in flight or
  // `timeout` passed (call Stop() after). Returns how many workers still had streams open.
  int64_t Drain(std::chrono::milliseconds timeout);
  void Stop();

  bool draining() const { return draining_.load(); }
  ProxyStats& stats() { return stats_; }
  // Prometheus text of every counter: the workers' and the per-Service balancing figures.
  // Prometheus text: the workers' counters, each Service's balancing, and what discovery holds.
  std::string RenderMetrics() const;
  // One block per worker and service: endpoints, outstanding streams, sessions, ejections.
  std::string DebugEndpoints();

 private:
  ProxyOptions options_;
  Registry& registry_;
  ProxyStats stats_;
  ServiceBalancers balancers_;
  // Declared before the workers, which hold raw pointers to them: destroyed after.
  SslCtxPtr downstream_tls_;  // null: h2c downstream
  SslCtxPtr upstream_tls_;    // null: h2c to the endpoints
  std::vector<uint16_t> ports_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::atomic<bool> draining_{false};
  bool started_ = false;
};

}  // namespace podlb::proxy
