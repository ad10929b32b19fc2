// Typed configuration of the proxy (built by cli/proxy_command.cc, read by every worker).
// Immutable after ProxyServer::Start: safe to read from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "balancing/service_policy.h"
#include "core/endpoint.h"
#include "h2/tls.h"

namespace podlb::proxy {

using h2::UpstreamTlsOptions;
using h2::SslCtxPtr;
using h2::MakeServerTlsContext;
using h2::MakeClientTlsContext;

struct ListenerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 0;  // 0 picks a free port (shared by every worker through SO_REUSEPORT)
  // Set: every stream goes to this service. Unset: route by :authority.
  std::optional<ServiceKey> service;
};

struct ProxyOptions {
  std::vector<ListenerConfig> listeners;
  int workers = 1;

  // Balancing defaults for every Service (policy, hash header, outlier ejection, retries);
  // each Service's podlb.io/* annotations override them.
  balancing::ServicePolicy balancing = balancing::DataPathDefaults();
  std::string zone;  // preferred zone (the node's), empty = none; zone-aware Services use it
  // This proxy's id among the Service's clients, for subsetting (balancing.subset_size or the
  // podlb.io/subset-size annotation): a trailing number ("podlb-proxy-3") numbers it.
  std::string subset_client_id;

  // Downstream limits (hostile input).
  uint32_t max_concurrent_streams = 1024;
  uint32_t max_header_list_bytes = 16 * 1024;
  uint32_t stream_window = 256 * 1024;  // bytes buffered per stream and direction, at most
  uint32_t connection_window = 16 * 1024 * 1024;
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{300'000};         // connection without streams
  std::chrono::milliseconds stream_idle_timeout{300'000};  // stream without frames
  uint32_t max_resets_per_second = 200;                    // CVE-2023-44487 rapid reset
  uint32_t max_control_frames_per_second = 1000;           // SETTINGS + PING floods
  std::string default_namespace = "default";               // for :authority "name:port"

  // Upstream.
  int max_connections_per_host = 8;
  std::chrono::milliseconds connect_timeout{2'000};
  int max_attempts = 3;  // for streams refused without processing

  // Active grpc.health.v1 checks every interval (0 = off).
  std::chrono::milliseconds health_check_interval{0};

  // Drain (SIGTERM): shutdown notice, then the final GOAWAY after this delay.
  std::chrono::milliseconds shutdown_notice_delay{1'000};

  // TLS downstream (ALPN h2) when both are set.
  std::string tls_cert_file;
  std::string tls_key_file;
  // TLS to the endpoints (h2c when not enabled).
  UpstreamTlsOptions upstream_tls;
};

}  // namespace podlb::proxy
