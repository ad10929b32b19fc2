// The cluster build, `build/podlb-cluster`: the binary of the production image (/podlb). It
// carries only what runs in a cluster; the sandbox, the demo and the test server (and the code
// behind them: src/sandbox, src/demo) are not linked in, and asking for them says where they are.
#include "cli/commands.h"

namespace podlb::cli {

CommandTable RegisterCommands(CLI::App& app) {
  CommandTable table;
  AddControlPlaneCommand(app, table);
  AddProxyCommand(app, table);
  AddEndpointsCommand(app, table);
  AddBootstrapCommand(app, table);
  constexpr char kDeveloperBuild[] = "the developer build (build/podlb from a source checkout)";
  constexpr char kDemoImage[] =
      "the developer build (build/podlb from a source checkout) and the podlb-demo image";
  AddAbsentCommand(app, table, "sandbox", kDeveloperBuild);
  AddAbsentCommand(app, table, "demo", kDemoImage);
  AddAbsentCommand(app, table, "test-server", kDemoImage);
  return table;
}

std::string BuildDescription() {
  return "cluster build: control-plane, proxy, endpoints, bootstrap";
}

}  // namespace podlb::cli
