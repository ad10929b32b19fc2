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
  return table;
}

int RunSelected(const CommandTable& table) {
  for (const auto& command : table) {
    if (command.app->parsed()) return command.run();
  }
  return 2;
}

}  // namespace podlb::cli
