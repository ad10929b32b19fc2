// podlb: one binary, one subcommand per job. This file only dispatches; each subcommand's flag
// parsing and wiring lives in its own file under src/cli/, and which subcommands this build has
// in developer_commands.cc or cluster_commands.cc (commands.h).
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/synchronization/mutex.h"
#include "cli/commands.h"
#include "cli/signals.h"
#include "cli/version.h"

int main(int argc, char** argv) {
  // Before any thread starts, so every thread inherits the blocked set and sigwait sees them.
  podlb::cli::BlockTerminationSignals();
  // Debian builds abseil without NDEBUG, which leaves absl::Mutex's deadlock detection on: every
  // lock then updates a process-wide lock graph under a global lock (GraphCycles, a few % of
  // the control plane's CPU with 10,000 streams, each with its own mutex). The tests, separate
  // binaries, keep it on; the product turns it off, once, before any thread starts.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  CLI::App app{"podlb: gRPC load balancing that follows Kubernetes pods", "podlb"};
  app.require_subcommand(1);
  // The cluster build says so after the version: that is how a user tells the image's binary.
  std::string build = podlb::cli::BuildDescription();
  app.set_version_flag("--version", std::string("podlb ") + podlb::cli::kVersion +
                                        (build.empty() ? "" : " (" + build + ")"));
  podlb::cli::CommandTable commands = podlb::cli::RegisterCommands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version exit 0; a usage error exits 2, as podlb's own flag checks do (CLI11's
    // own codes, 105 to 115, mean nothing to a shell script).
    return app.exit(e) == 0 ? 0 : 2;
  }
  return podlb::cli::RunSelected(commands);
}
