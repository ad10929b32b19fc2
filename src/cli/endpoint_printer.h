// Renders an EndpointSet for people (a table) or for scripts (one JSON object per line).
// Pure functions; callable from any thread.
#pragma once

#include <string>

#include "core/endpoint.h"

namespace podlb::cli {

std::string FormatEndpointTable(const EndpointSet& set);
std::string FormatEndpointJson(const EndpointSet& set);  // one line, no trailing newline

}  // namespace podlb::cli
