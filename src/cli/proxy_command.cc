// `podlb proxy`: the node-local / sidecar gRPC proxy. Flag parsing and wiring only: discovery
// source → Registry → ProxyServer workers, plus the admin server; SIGTERM drains.
#include <cstdio>

#include "admin/admin_server.h"
#include "cli/commands.h"
#include "cli/flag_names.h"
#include "cli/signals.h"
#include "cli/source_flags.h"
#include "core/host_port.h"
#include "core/logging.h"
#include "core/pod_identity.h"
#include "balancing/service_policy.h"
#include "proxy/proxy_server.h"

namespace podlb::cli {
namespace {

struct ProxyFlags {
  SourceFlags source;
  std::vector<std::string> listen;
  int workers = 1;
  std::string admin = "127.0.0.1:9901";
  std::string lb = "peak_ewma";
  std::string hash_header = balancing::kDefaultHashHeader;
  std::string zone;
  std::string default_namespace = "default";
  double drain_timeout_seconds = 30;
  int shutdown_notice_ms = 1000;
  std::string tls_cert;
  std::string tls_key;
  bool upstream_tls = false;
  std::string upstream_ca;
  std::string upstream_cert;
  std::string upstream_key;
  std::string upstream_server_name;
  uint32_t max_concurrent_streams = 1024;
  uint32_t max_header_list_size = 16 * 1024;
  double idle_timeout_seconds = 300;
  double stream_idle_timeout_seconds = 300;
  uint32_t consecutive_failures = balancing::DataPathDefaults().outlier.consecutive_failures;
  bool outlier_detection = true;
  uint32_t retry_on_unavailable = 0;
  double health_check_interval_seconds = 0;
  uint32_t subset_size = 0;
  std::string subset_client_id;
};

// HOST:PORT[=SERVICE], where HOST may be [v6].
absl::StatusOr<proxy::ListenerConfig> ParseListen(const std::string& text,
                                                  const std::string& default_ns) {
  proxy::ListenerConfig config;
  std::string address = text;
  if (size_t eq = text.find('='); eq != std::string::npos) {
    address = text.substr(0, eq);
    auto key = ServiceKey::Parse(text.substr(eq + 1), default_ns);
    if (!key.ok())
      return absl::InvalidArgumentError("--listen " + text + ": " +
                                        InFlagTerms(key.status()));
    config.service = *key;
  }
  auto host_port = ParseHostPort(address);
  if (!host_port.ok()) {
    return absl::InvalidArgumentError("--listen " + text + ": " +
                                      InFlagTerms(host_port.status()) +
                                      " (or HOST:PORT=NAMESPACE/SERVICE:PORT)");
  }
  config.host = host_port->host;
  config.port = host_port->port;
  return config;
}

std::chrono::milliseconds Ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

int RunProxy(const ProxyFlags& flags) {
  proxy::ProxyOptions options;
  std::vector<ServiceKey> services;
  for (const std::string& l : flags.listen) {
    auto config = ParseListen(l, flags.default_namespace);
    if (!config.ok()) {
      LogError("{}", InFlagTerms(config.status()));
      return 2;
    }
    if (config->service) services.push_back(*config->service);
    options.listeners.push_back(*config);
  }
  options.workers = flags.workers;
  // Flags are the defaults; each Service's podlb.io/* annotations override them. The same
  // parser reads both, so a flag value is held to the annotation's rules.
  {
    std::map<std::string, std::string> as_annotations = {
        {balancing::kLbPolicyAnnotation, flags.lb},
        {balancing::kHashHeaderAnnotation, flags.hash_header},
        {balancing::kOutlierDetectionAnnotation, flags.outlier_detection ? "true" : "false"},
        {balancing::kOutlierConsecutiveAnnotation, std::to_string(flags.consecutive_failures)},
        {balancing::kRetryOnUnavailableAnnotation, std::to_string(flags.retry_on_unavailable)},
        {balancing::kZoneAwareAnnotation, flags.zone.empty() ? "false" : "true"},
        {balancing::kSubsetSizeAnnotation, std::to_string(flags.subset_size)}};
    options.balancing = balancing::ParseServicePolicy(as_annotations, balancing::DataPathDefaults());
    if (!options.balancing.problems.empty()) {
      // Name the flag, not the annotation the value was checked as.
      std::string problem = options.balancing.problems.front();
      LogError("podlb proxy: bad flag value: {}", problem);
      return 2;
    }
  }
  options.zone = flags.zone;
  options.subset_client_id =
      flags.subset_client_id.empty() ? PodNameOrHostname("") : flags.subset_client_id;
  options.default_namespace = flags.default_namespace;
  options.shutdown_notice_delay = std::chrono::milliseconds(flags.shutdown_notice_ms);
  options.tls_cert_file = flags.tls_cert;
  options.tls_key_file = flags.tls_key;
  // Any upstream TLS detail implies --upstream-tls: a CA given for h2c would be a silent no-op.
  options.upstream_tls = {.enabled = flags.upstream_tls || !flags.upstream_ca.empty() ||
                                     !flags.upstream_cert.empty() || !flags.upstream_key.empty() ||
                                     !flags.upstream_server_name.empty(),
                          .ca_file = flags.upstream_ca,
                          .cert_file = flags.upstream_cert,
                          .key_file = flags.upstream_key,
                          .server_name = flags.upstream_server_name};
  options.max_concurrent_streams = flags.max_concurrent_streams;
  options.max_header_list_bytes = flags.max_header_list_size;
  options.idle_timeout = Ms(flags.idle_timeout_seconds);
  options.stream_idle_timeout = Ms(flags.stream_idle_timeout_seconds);
  options.health_check_interval = Ms(flags.health_check_interval_seconds);
  if (options.upstream_tls.enabled) {
    // Unreadable or mismatched TLS files are flag errors: report them before discovery starts.
    if (auto tls = proxy::MakeClientTlsContext(options.upstream_tls); !tls.ok()) {
      LogError("{}", InFlagTerms(tls.status()));
      return 2;
    }
  }

  Registry registry;
  auto source = flags.source.MakeSource(registry, services);
  if (!source.ok()) {
    LogError("{}", InFlagTerms(source.status()));
    return 2;
  }
  if (auto status = (*source)->Start(); !status.ok()) {
    LogError("{}", InFlagTerms(status));
    return 1;
  }
  proxy::ProxyServer server(options, registry);
  if (auto status = server.Start(); !status.ok()) {
    LogError("{}", InFlagTerms(status));
    (*source)->Stop();
    return 1;
  }
  AdminServer admin;
  EndpointSource* src = source->get();
  admin.Handle("/healthz", [](const std::string&) { return AdminResponse{.body = "ok\n"}; });
  admin.Handle("/readyz", [src, &server](const std::string&) {
    if (server.draining()) return AdminResponse{.status = 503, .body = "draining\n"};
    if (!src->HasSynced())
      return AdminResponse{
          .status = 503,
          .body = "discovery not synced: " + InFlagTerms(src->Health()) + "\n"};
    return AdminResponse{.body = "ready\n"};
  });
  admin.Handle("/metrics", [&server](const std::string&) {
    return AdminResponse{.content_type = "text/plain; version=0.0.4",
                         .body = server.RenderMetrics()};
  });
  admin.Handle("/debug/endpoints", [&server](const std::string&) {
    return AdminResponse{.body = server.DebugEndpoints()};
  });
  if (!flags.admin.empty()) {
    if (auto status = admin.Start(flags.admin); !status.ok()) {
      LogError("{}", InFlagTerms(status));
      server.Stop();
      (*source)->Stop();
      return 1;
    }
  }
  for (size_t i = 0; i < options.listeners.size(); ++i) {
    const auto& l = options.listeners[i];
    std::printf("podlb proxy listening on %s:%u routing %s\n", l.host.c_str(), server.ports()[i],
                l.service ? l.service->ToString().c_str() : "by :authority");
  }
  if (!flags.admin.empty()) std::printf("podlb proxy admin on port %d\n", admin.port());
  std::fflush(stdout);

  int sig = WaitForTerminationSignal();
  LogInfo("proxy: signal {}: draining (GOAWAY notice, final GOAWAY after {} ms, up to {} s)", sig,
          flags.shutdown_notice_ms, flags.drain_timeout_seconds);
  int64_t busy = server.Drain(Ms(flags.drain_timeout_seconds));
  if (busy > 0) LogWarn("proxy: drain timeout: {} workers still had streams open", busy);
  admin.Stop();
  server.Stop();
  (*source)->Stop();
  std::printf("podlb proxy drained\n");
  std::fflush(stdout);
  return 0;
}

}  // namespace

void AddProxyCommand(CLI::App& app, CommandTable& table) {
  auto flags = std::make_shared<ProxyFlags>();
  auto* sub =
      app.add_subcommand("proxy", "Node-local / sidecar gRPC proxy that balances every call");
  sub->add_option("--listen", flags->listen,
                  "HOST:PORT=NAMESPACE/SERVICE:PORT binds a port to a service; HOST:PORT alone "
                  "routes by :authority (repeatable)")
      ->required();
  sub->add_option("--workers", flags->workers, "event-loop threads")->check(CLI::Range(1, 256));
  sub->add_option("--admin", flags->admin,
                  "admin HTTP address (/healthz /readyz /metrics "
                  "/debug/endpoints); empty disables");
  sub->add_option("--lb", flags->lb,
                  "default balancing policy (a Service's podlb.io/lb-policy wins): peak_ewma "
                  "(latency-aware, the default), least_request (p2c), round_robin, ring_hash")
      ->check(CLI::IsMember({"peak_ewma", "least_request", "p2c", "round_robin", "ring_hash"}));
  sub->add_option("--hash-header", flags->hash_header,
                  "default request header hashed by ring_hash (podlb.io/hash-header wins)");
  sub->add_option("--zone", flags->zone, "prefer endpoints in this zone (the node's)")
      ->envname("PODLB_ZONE");
  sub->add_option("--default-namespace", flags->default_namespace,
                  "namespace for :authority and --listen names without one");
  sub->add_option("--drain-timeout", flags->drain_timeout_seconds,
                  "seconds in-flight calls may take to finish after SIGTERM");
  sub->add_option("--shutdown-notice-delay", flags->shutdown_notice_ms,
                  "milliseconds between the GOAWAY notice and the final GOAWAY");
  sub->add_option("--tls-cert", flags->tls_cert, "PEM certificate chain: serve TLS (ALPN h2)");
  sub->add_option("--tls-key", flags->tls_key, "PEM private key for --tls-cert");
  sub->add_flag("--upstream-tls", flags->upstream_tls,
                "TLS (ALPN h2) to the endpoints, verified against the system CAs or --upstream-ca");
  sub->add_option("--upstream-ca", flags->upstream_ca,
                  "PEM CA bundle the endpoints' certificates must chain to (implies --upstream-tls)");
  sub->add_option("--upstream-cert", flags->upstream_cert,
                  "PEM client certificate chain for endpoints that require mTLS");
  sub->add_option("--upstream-key", flags->upstream_key, "PEM private key for --upstream-cert");
  sub->add_option("--upstream-server-name", flags->upstream_server_name,
                  "SNI sent to the endpoints, and the name their certificates must carry "
                  "(default: the chain is verified, the name is not)");
  sub->add_option("--max-concurrent-streams", flags->max_concurrent_streams,
                  "per downstream connection");
  sub->add_option("--max-header-list-size", flags->max_header_list_size,
                  "bytes of request headers per stream (RFC 9113 accounting)");
  sub->add_option("--idle-timeout", flags->idle_timeout_seconds,
                  "seconds a connection without streams stays open");
  sub->add_option("--stream-idle-timeout", flags->stream_idle_timeout_seconds,
                  "seconds a stream may go without frames");
  sub->add_option("--outlier-consecutive-failures", flags->consecutive_failures,
                  "failed calls in a row (UNAVAILABLE, INTERNAL, UNKNOWN, DEADLINE_EXCEEDED, "
                  "transport) that eject an endpoint");
  sub->add_option("--outlier-detection", flags->outlier_detection,
                  "eject failing endpoints by default (podlb.io/outlier-detection wins)");
  sub->add_option("--retry-on-unavailable", flags->retry_on_unavailable,
                  "default retries of calls answered UNAVAILABLE before any response byte, "
                  "within a budget of 20 % of calls (podlb.io/retry-on-unavailable wins)")
      ->check(CLI::Range(0, 10));
  sub->add_option("--health-check-interval", flags->health_check_interval_seconds,
                  "seconds between active grpc.health.v1 checks of every endpoint (0 = off)");
  sub->add_option("--subset-size", flags->subset_size,
                  "connect to about this many endpoints of each Service instead of all of them "
                  "(0 = all; podlb.io/subset-size wins; docs/balancing.md#subsetting)")
      ->check(CLI::Range(0, 100000));
  sub->add_option("--subset-client-id", flags->subset_client_id,
                  "this proxy's id for subsetting; a trailing number (-N) numbers it among the "
                  "Service's clients (default: $POD_NAME, else $HOSTNAME)");
  flags->source.AddTo(*sub);
  table.push_back({sub, [flags] { return RunProxy(*flags); }});
}

}  // namespace podlb::cli
