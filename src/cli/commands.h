// Registration of every subcommand. Each Add*Command adds one subcommand to the app with its
// flags, and a runner that RunSelected calls when that subcommand was chosen.
#pragma once

#include <functional>
#include <vector>

#include "CLI/CLI.hpp"

namespace podlb::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;  // returns the process exit code
};
using CommandTable = std::vector<Command>;

void AddEndpointsCommand(CLI::App& app, CommandTable& table);
void AddSandboxCommand(CLI::App& app, CommandTable& table);
void AddControlPlaneCommand(CLI::App& app, CommandTable& table);
void AddBootstrapCommand(CLI::App& app, CommandTable& table);
void AddProxyCommand(CLI::App& app, CommandTable& table);
void AddDemoCommand(CLI::App& app, CommandTable& table);

CommandTable RegisterCommands(CLI::App& app);
int RunSelected(const CommandTable& table);

}  // namespace podlb::cli
