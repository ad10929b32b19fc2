// `podlb control-plane` as a child process for xDS integration tests: started with the test's
// flags plus an admin port, ready once it printed its ports line; Prometheus samples read from
// that admin port. Header-only; used from the test's main thread.
#pragma once

#include <signal.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "support/process.h"

namespace podlb::testing {

class ControlPlaneProcess {
 public:
  // `args` follow `podlb control-plane`; --listen must be among them.
  explicit ControlPlaneProcess(std::vector<std::string> args) {
    std::vector<std::string> argv = {PodlbBinary(), "control-plane", "--admin", "127.0.0.1:0"};
    argv.insert(argv.end(), args.begin(), args.end());
    process_ = std::make_unique<ChildProcess>(argv);
  }

  // Waits for the ports line and reads the ports from it.
  [[nodiscard]] ::testing::AssertionResult WaitReady() {
    auto ready = process_->WaitForLineContaining("xds port", std::chrono::seconds(10));
    if (!ready) return ready;
    for (const std::string& line : process_->Lines()) {
      auto xds = line.find("xds port ");
      auto admin = line.find("admin port ");
      if (xds == std::string::npos || admin == std::string::npos) continue;
      xds_port_ = std::stoi(line.substr(xds + 9));
      admin_port_ = std::stoi(line.substr(admin + 11));
    }
    return ::testing::AssertionSuccess();
  }

  int xds_port() const { return xds_port_; }
  pid_t pid() const { return process_->pid(); }

  // The body of an admin page (e.g. "/debug/config"), or "" when it does not answer.
  std::string AdminGet(const std::string& path) const {
    std::string out;
    if (RunCommand({"curl", "-sf", "http://127.0.0.1:" + std::to_string(admin_port_) + path}, &out,
                   std::chrono::seconds(5)) != 0) {
      return "";
    }
    return out;
  }

  // One Prometheus sample from the admin port, or -1 (no such sample, or no answer).
  double Metric(const std::string& name) const {
    const std::string out = AdminGet("/metrics");
    for (absl::string_view line : absl::StrSplit(out, '\n')) {
      if (absl::StartsWith(line, name + " ")) {
        double v = -1;
        if (absl::SimpleAtod(line.substr(name.size() + 1), &v)) return v;
      }
    }
    return -1;
  }

  double ConnectedClients() const { return Metric("podlb_xds_connected_clients"); }

  // SIGKILL: no goodbye to the clients, as when a node or pod dies.
  void Kill() {
    kill(process_->pid(), SIGKILL);
    process_->WaitExit(std::chrono::seconds(5));
  }

 private:
  std::unique_ptr<ChildProcess> process_;
  int xds_port_ = 0;
  int admin_port_ = 0;
};

}  // namespace podlb::testing
