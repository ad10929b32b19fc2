// `podlb bootstrap`: prints the xDS bootstrap JSON for a client of `podlb control-plane`, or
// writes it to a file (an init container of an image without a shell cannot redirect stdout).
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "cli/commands.h"
#include "core/pod_identity.h"
#include "xds/bootstrap.h"

namespace podlb::cli {
namespace {

struct BootstrapFlags {
  std::string server;
  std::string node_id;
  std::string zone;
  std::string region;
  bool tls = false;
  std::string output;  // empty: stdout
};

// Writes `text` to `path` through a temporary file and a rename, so a reader never sees half a
// bootstrap.
bool WriteFileAtomically(const std::string& path, const std::string& text) {
  std::string tmp = path + ".tmp";
  FILE* f = fopen(tmp.c_str(), "w");
  if (f == nullptr) {
    fprintf(stderr, "bootstrap: cannot write %s: %s\n", tmp.c_str(), strerror(errno));
    return false;
  }
  bool ok = fwrite(text.data(), 1, text.size(), f) == text.size();
  ok = (fclose(f) == 0) && ok;
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0) {
    fprintf(stderr, "bootstrap: cannot write %s: %s\n", path.c_str(), strerror(errno));
    remove(tmp.c_str());
    return false;
  }
  return true;
}

int RunBootstrap(const BootstrapFlags& flags) {
  xds::BootstrapOptions options{
      .server = flags.server,
      .node_id = flags.node_id.empty() ? PodNameOrHostname("podlb-client") : flags.node_id,
      .zone = flags.zone,
      .region = flags.region,
      .tls = flags.tls};
  std::string json = xds::BuildBootstrapJson(options) + "\n";
  if (!flags.output.empty()) return WriteFileAtomically(flags.output, json) ? 0 : 1;
  fwrite(json.data(), 1, json.size(), stdout);
  return 0;
}

}  // namespace

void AddBootstrapCommand(CLI::App& app, CommandTable& table) {
  auto flags = std::make_shared<BootstrapFlags>();
  auto* sub = app.add_subcommand(
      "bootstrap",
      "Print the xDS bootstrap JSON a gRPC client needs (for GRPC_XDS_BOOTSTRAP or "
      "GRPC_XDS_BOOTSTRAP_CONFIG)");
  sub->add_option("--server", flags->server, "control plane address HOST:PORT")->required();
  sub->add_option("--node-id", flags->node_id, "node id (default: $POD_NAME, else the hostname)");
  sub->add_option("--zone", flags->zone, "the client's zone, for zone-aware Services");
  sub->add_option("--region", flags->region, "the client's region");
  sub->add_flag("--tls", flags->tls, "connect to the control plane with TLS");
  sub->add_option("--output", flags->output, "write the bootstrap to FILE instead of stdout");
  table.push_back({sub, [flags] { return RunBootstrap(*flags); }});
}

}  // namespace podlb::cli
