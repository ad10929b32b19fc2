// `podlb control-plane`: the xDS server for proxyless gRPC clients, fed by one discovery source,
// with an admin port for probes, metrics and a view of what each client holds.
#include <cstdio>

#include "admin/admin_server.h"
#include "cli/commands.h"
#include "cli/flag_names.h"
#include "cli/signals.h"
#include "cli/source_flags.h"
#include "core/logging.h"
#include "xds/xds_server.h"

namespace podlb::cli {
namespace {

struct ControlPlaneFlags {
  SourceFlags source;
  std::string listen = "0.0.0.0:18000";
  std::string admin = "127.0.0.1:18001";
  std::string tls_cert;
  std::string tls_key;
  std::string tls_client_ca;
  double coalesce_ms = 2;
  int workers = 0;
  std::string log_level = "info";
};

int RunControlPlane(const ControlPlaneFlags& flags) {
  LogLevel level;
  if (!ParseLogLevel(flags.log_level, &level)) {
    LogError("--log-level \"{}\": use debug, info, warn or error", flags.log_level);
    return 2;
  }
  SetLogLevel(level);
  Registry registry;
  // No service list: the control plane serves whatever Service a client asks for.
  auto source = flags.source.MakeSource(registry, {});
  if (!source.ok()) {
    LogError("{}", InFlagTerms(source.status()));
    return 2;
  }
  xds::XdsServerOptions options;
  options.listen = flags.listen;
  options.tls = {.cert_file = flags.tls_cert, .key_file = flags.tls_key,
                 .client_ca_file = flags.tls_client_ca};
  options.workers = flags.workers;
  options.ads.coalesce_window =
      std::chrono::microseconds(static_cast<int64_t>(flags.coalesce_ms * 1000));
  xds::XdsServer server(registry, options);
  if (auto status = server.Start(); !status.ok()) {
    LogError("{}", InFlagTerms(status));
    return 1;
  }
  if (auto status = (*source)->Start(); !status.ok()) {
    LogError("{}", InFlagTerms(status));
    return 1;
  }

  AdminServer admin;
  EndpointSource* src = source->get();
  xds::AdsService* ads = &server.service();
  admin.Handle("/healthz", [](const std::string&) { return AdminResponse{.body = "ok\n"}; });
  admin.Handle("/readyz", [src](const std::string&) {
    if (src->HasSynced()) return AdminResponse{.body = "ready\n"};
    return AdminResponse{.status = 503,
                         .body = "waiting for the first endpoint list from " + src->Name() +
                                 ": " + InFlagTerms(src->Health()) + "\n"};
  });
  admin.Handle("/metrics", [ads](const std::string&) {
    return AdminResponse{.content_type = "text/plain; version=0.0.4",
                         .body = ads->PrometheusText()};
  });
  admin.Handle("/debug/config", [ads](const std::string&) {
    return AdminResponse{.content_type = "application/json", .body = ads->DebugConfigJson()};
  });
  if (!flags.admin.empty()) {
    if (auto status = admin.Start(flags.admin); !status.ok()) {
      LogError("{}", InFlagTerms(status));
      return 1;
    }
  }
  // One line on stdout, for scripts and tests that wait for readiness and need the ports.
  std::printf("podlb control-plane: xds port %d admin port %d\n", server.port(),
              flags.admin.empty() ? 0 : admin.port());
  std::fflush(stdout);

  int signal = WaitForTerminationSignal();
  LogInfo("control-plane: signal {}, shutting down", signal);
  admin.Stop();
  server.Stop();
  (*source)->Stop();
  return 0;
}

}  // namespace

void AddControlPlaneCommand(CLI::App& app, CommandTable& table) {
  auto flags = std::make_shared<ControlPlaneFlags>();
  auto* sub = app.add_subcommand(
      "control-plane", "xDS (ADS v3) server: proxyless gRPC clients dial xds:///name.ns:port");
  sub->add_option("--listen", flags->listen, "xDS address HOST:PORT (port 0 picks one)")->capture_default_str();
  sub->add_option("--admin", flags->admin,
                  "admin HTTP address HOST:PORT for /healthz /readyz /metrics /debug/config "
                  "(empty: off)")->capture_default_str();
  sub->add_option("--tls-cert", flags->tls_cert, "serve TLS with this certificate (PEM)");
  sub->add_option("--tls-key", flags->tls_key, "private key of --tls-cert (PEM)");
  sub->add_option("--tls-client-ca", flags->tls_client_ca,
                  "require client certificates signed by this CA (mTLS)");
  sub->add_option("--coalesce-ms", flags->coalesce_ms,
                  "milliseconds endpoint changes are gathered before a push")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1000.0));
  sub->add_option("--workers", flags->workers,
                  "event loops serving xDS connections (0: one per core)")
      ->capture_default_str()
      ->check(CLI::Range(0, 64));
  sub->add_option("--log-level", flags->log_level, "debug, info, warn or error")->capture_default_str();
  flags->source.AddTo(*sub);
  table.push_back({sub, [flags] { return RunControlPlane(*flags); }});
}

}  // namespace podlb::cli
