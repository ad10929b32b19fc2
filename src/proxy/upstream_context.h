// What a worker's clusters, their upstream sessions and their health checks use from the
// worker: its loop, statistics and random sequence, and how to reach endpoints. Built once by
// the Worker, which outlives every user; worker thread only.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "core/split_mix64.h"
#include "h2/event_loop.h"
#include "proxy/proxy_options.h"
#include "proxy/proxy_stats.h"

namespace podlb::proxy {

using h2::EventLoop;

// How an UpstreamSession connects.
struct UpstreamConnectionConfig {
  SSL_CTX* tls = nullptr;       // null: h2c
  std::string tls_server_name;  // SNI and the name the certificate must carry; empty: none
  uint32_t stream_window = 0;   // our SETTINGS_INITIAL_WINDOW_SIZE
  std::chrono::milliseconds connect_timeout{0};  // bounds the TLS handshake too

  static UpstreamConnectionConfig From(const ProxyOptions& options, SSL_CTX* tls) {
    return {.tls = tls,
            .tls_server_name = options.upstream_tls.server_name,
            .stream_window = options.stream_window,
            .connect_timeout = options.connect_timeout};
  }
};

struct UpstreamContext {
  EventLoop& loop;
  ProxyStats& stats;
  SplitMix64& random;
  const UpstreamConnectionConfig& connection;
  int max_connections_per_host = 1;
  std::chrono::milliseconds health_check_interval{0};  // 0: no active checks
};

}  // namespace podlb::proxy
