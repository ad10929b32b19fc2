// The library names its options in errors (`ProxyOptions::listeners`, `UpstreamTlsOptions::
// cert_file`); a user of the CLI knows them as flags. InFlagTerms rewrites a library message in
// the CLI's words before a command prints it. Pure; any thread.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace podlb::cli {

// `message` with each option name the CLI has a flag for replaced by that flag.
std::string InFlagTerms(std::string_view message);
inline std::string InFlagTerms(const absl::Status& status) {
  return InFlagTerms(std::string_view(status.message().data(), status.message().size()));
}

}  // namespace podlb::cli
