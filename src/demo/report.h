// The demo's three outputs from one DemoResult: a table per scenario (stdout), one JSON object
// (--json, a stable shape scripts read), and a self-contained HTML report with an inline SVG chart of
// calls/s per pod for every run (--report). Pure functions; any thread.
#pragma once

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "demo/runner.h"
#include "nlohmann/json.hpp"

namespace podlb::demo {

void PrintTables(const DemoResult& result, std::ostream& out);
nlohmann::json ToJson(const DemoResult& result);
std::string RenderHtml(const DemoResult& result);
absl::Status WriteHtmlReport(const DemoResult& result, const std::string& path);

}  // namespace podlb::demo
