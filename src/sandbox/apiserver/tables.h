// Server-side printing: the meta.k8s.io/v1 Table kubectl asks for (Accept: ...;as=Table) when it
// prints objects for humans, with the columns the real server prints for each served type.
// Pure functions; any thread.
#pragma once

#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

// A Table of `objects`. Watches send the column definitions with the first event only.
nlohmann::json ToTable(const ResourceType& type, const std::vector<nlohmann::json>& objects,
                       bool with_columns, const std::string& resource_version);

}  // namespace podlb::sandbox
