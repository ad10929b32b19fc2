#include "cli/commands.h"

#include <iostream>

namespace podlb::cli {

void AddAbsentCommand(CLI::App& app, CommandTable& table, const std::string& name,
                      const std::string& where) {
  // An empty group hides it from --help; prefix_command takes every argument that follows
  // (flags included) as extras, and without a help flag `podlb sandbox --help` answers the same.
  CLI::App* sub = app.add_subcommand(name, "");
  sub->group("");
  sub->prefix_command();
  sub->set_help_flag();
  table.push_back({sub, [name, where] {
                     std::cerr << "podlb: this build of podlb (" << BuildDescription()
                               << ") has no `" << name << "` command; it is in " << where
                               << std::endl;
                     return 2;
                   }});
}

int RunSelected(const CommandTable& table) {
  for (const auto& command : table) {
    if (command.app->parsed()) return command.run();
  }
  return 2;
}

}  // namespace podlb::cli
