// The developer build, `build/podlb`: every command, the sandbox and the demo included. Also the
// binary of the podlb-demo image (README, "Deploy to a cluster").
#include "cli/commands.h"

namespace podlb::cli {

CommandTable RegisterCommands(CLI::App& app) {
  CommandTable table;
  AddEndpointsCommand(app, table);
  AddSandboxCommand(app, table);
  AddControlPlaneCommand(app, table);
  AddBootstrapCommand(app, table);
  AddProxyCommand(app, table);
  AddDemoCommand(app, table);
  AddTestServerCommand(app, table);
  return table;
}

std::string BuildDescription() { return ""; }

}  // namespace podlb::cli
