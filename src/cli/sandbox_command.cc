// `podlb sandbox`: the API-server stand-in plus backend pods.
#include "cli/commands.h"

namespace podlb::cli {

void AddSandboxCommand(CLI::App& app, CommandTable& table) {
  auto* sub = app.add_subcommand("sandbox", "Run the Kubernetes API-server stand-in and backend pods");
  table.push_back({sub, [] { return 0; }});
}

}  // namespace podlb::cli
