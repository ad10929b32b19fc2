// Registration of every subcommand. Each Add*Command adds one subcommand to the app with its
// flags, and a runner that RunSelected calls when that subcommand was chosen.
//
// podlb is built as two executables from the same files (issue 13): the developer build
// (`build/podlb`, every command) and the cluster build (`build/podlb-cluster`, the binary of the
// production image: only what runs in a cluster). Which commands a build has is decided by
// which of developer_commands.cc / cluster_commands.cc is linked: each defines RegisterCommands
// and BuildDescription, calling the Add*Command functions it carries explicitly.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace podlb::cli {

struct Command {
  CLI::App* app;
  std::function<int()> run;  // returns the process exit code
};
using CommandTable = std::vector<Command>;

// In both builds.
void AddEndpointsCommand(CLI::App& app, CommandTable& table);
void AddControlPlaneCommand(CLI::App& app, CommandTable& table);
void AddBootstrapCommand(CLI::App& app, CommandTable& table);
void AddProxyCommand(CLI::App& app, CommandTable& table);
// Only in the developer build (and the podlb-demo image, which carries it).
void AddSandboxCommand(CLI::App& app, CommandTable& table);
void AddDemoCommand(CLI::App& app, CommandTable& table);
void AddTestServerCommand(CLI::App& app, CommandTable& table);

// A command this build does not carry: hidden from --help, it takes any arguments and exits 2
// with a message naming the build that has it (`where`), instead of CLI11's "unexpected
// argument", which would read as a typo.
void AddAbsentCommand(CLI::App& app, CommandTable& table, const std::string& name,
                      const std::string& where);

// Defined once per build (developer_commands.cc, cluster_commands.cc).
CommandTable RegisterCommands(CLI::App& app);
// What `--version` adds after "podlb VERSION": empty for the developer build.
std::string BuildDescription();

int RunSelected(const CommandTable& table);

}  // namespace podlb::cli
