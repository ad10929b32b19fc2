// `podlb endpoints SERVICE`: prints the live endpoint set of a service and every change.
#include <cstdio>

#include "cli/commands.h"
#include "cli/flag_names.h"
#include "cli/endpoint_printer.h"
#include "cli/signals.h"
#include "cli/source_flags.h"
#include "core/logging.h"

namespace podlb::cli {
namespace {

struct EndpointsFlags {
  SourceFlags source;
  std::string service;
  bool json = false;
  bool once = false;
};

int RunEndpoints(const EndpointsFlags& flags) {
  ServiceKey key;
  if (!flags.source.dns.empty() && flags.service.empty()) {
    auto dns_key = flags.source.DnsKey();
    if (!dns_key.ok()) {
      LogError("{}", InFlagTerms(dns_key.status()));
      return 2;
    }
    key = *dns_key;
  } else {
    auto parsed = ServiceKey::Parse(flags.service);
    if (!parsed.ok()) {
      LogError("{}", InFlagTerms(parsed.status()));
      return 2;
    }
    key = *parsed;
  }
  Registry registry;
  auto source = flags.source.MakeSource(registry, {key});
  if (!source.ok()) {
    LogError("{}", InFlagTerms(source.status()));
    return 2;
  }
  // Set on the registry's thread once a snapshot was printed.
  struct Printed {
    absl::Mutex mu;
    bool printed ABSL_GUARDED_BY(mu) = false;
  } state;
  auto subscription = registry.Subscribe(key, [&](const ServiceKey&, const EndpointSetConstSharedPtr& set) {
    std::string text = flags.json ? FormatEndpointJson(*set) + "\n" : FormatEndpointTable(*set) + "\n";
    fwrite(text.data(), 1, text.size(), stdout);
    fflush(stdout);
    absl::MutexLock lock(&state.mu);
    state.printed = true;
  });
  if (auto status = (*source)->Start(); !status.ok()) {
    LogError("{}", InFlagTerms(status));
    return 1;
  }
  if (flags.once) {
    absl::MutexLock lock(&state.mu);
    state.mu.AwaitWithTimeout(absl::Condition(&state.printed), absl::Seconds(30));
    if (!state.printed) {
      LogError("no endpoints for {} within 30 s: {}", key.ToString(),
               InFlagTerms((*source)->Health()));
    }
  } else {
    WaitForTerminationSignal();
  }
  subscription.reset();
  (*source)->Stop();
  absl::MutexLock lock(&state.mu);
  return state.printed ? 0 : 1;
}

}  // namespace

void AddEndpointsCommand(CLI::App& app, CommandTable& table) {
  auto flags = std::make_shared<EndpointsFlags>();
  auto* sub = app.add_subcommand(
      "endpoints", "Print the live endpoints of a service, and every change, until interrupted");
  sub->add_option("service", flags->service,
                  "namespace/name:port or name.namespace:port (port: number or name); "
                  "optional with --dns");
  sub->add_flag("--json", flags->json, "one JSON object per change, for scripts");
  sub->add_flag("--once", flags->once, "print the first endpoint set and exit");
  flags->source.AddTo(*sub);
  table.push_back({sub, [flags] { return RunEndpoints(*flags); }});
}

}  // namespace podlb::cli
