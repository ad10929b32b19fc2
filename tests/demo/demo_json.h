// Runs `podlb demo --json …` as a user would and hands back its JSON, indexed by scenario and
// strategy. For the demo's end-to-end tests; main test thread only.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "support/process.h"

namespace podlb::demo {

struct DemoJson {
  nlohmann::json root;
  std::string output;  // stdout + stderr, for failure messages

  // The entry of `strategy` in `scenario`, or null JSON.
  nlohmann::json Get(const std::string& scenario, const std::string& strategy) const {
    for (const auto& s : root["scenarios"]) {
      if (s["name"] != scenario) continue;
      for (const auto& entry : s["strategies"]) {
        if (entry["name"] == strategy) return entry;
      }
    }
    return nullptr;
  }
};

inline ::testing::AssertionResult RunDemoJson(std::vector<std::string> args, DemoJson* out) {
  std::vector<std::string> argv = {testing::PodlbBinary(), "demo", "--json"};
  argv.insert(argv.end(), args.begin(), args.end());
  int code = testing::RunCommand(argv, &out->output, std::chrono::seconds(110));
  if (code != 0) {
    return ::testing::AssertionFailure() << "podlb demo exited " << code << ":\n" << out->output;
  }
  // Progress and child logs share the captured output; the JSON is the one line that is JSON.
  size_t at = out->output.find("{\"scenarios\"");
  if (at == std::string::npos) {
    return ::testing::AssertionFailure() << "no JSON in the output:\n" << out->output;
  }
  size_t end = out->output.find('\n', at);
  try {
    out->root = nlohmann::json::parse(out->output.substr(at, end == std::string::npos
                                                                 ? std::string::npos
                                                                 : end - at));
  } catch (const nlohmann::json::exception& e) {
    return ::testing::AssertionFailure() << "bad JSON (" << e.what() << "):\n" << out->output;
  }
  return ::testing::AssertionSuccess();
}

}  // namespace podlb::demo
