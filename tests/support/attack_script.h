// Runs one scenario of a hostile-traffic script (tests/proxy/h2_attacks.py, tests/xds/
// ads_attacks.py: raw HTTP/2 frames from python3-h2) against a server on 127.0.0.1:`port`, and
// returns what its "RESULT ..." line says (or "no result: " and the output). The script must
// exit 0. PODLB_DEBUG_ATTACKS=1 prints its whole output. Header-only; any test thread.
#pragma once

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <regex>
#include <string>

#include "gtest/gtest.h"
#include "support/process.h"

namespace podlb::testing {

inline std::string RunAttackScript(const std::string& script, int port,
                                   const std::string& scenario) {
  std::string output;
  int rc = RunCommand({"/usr/bin/python3", SourceDir() + "/" + script, std::to_string(port),
                       scenario},
                      &output, std::chrono::seconds(30));
  EXPECT_EQ(rc, 0) << output;
  if (getenv("PODLB_DEBUG_ATTACKS")) std::cerr << output;
  std::smatch m;
  static const std::regex kResult("RESULT ([^\n]*)");
  return std::regex_search(output, m, kResult) ? m[1].str() : "no result: " + output;
}

}  // namespace podlb::testing
