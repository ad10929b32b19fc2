// The discovery documents kubectl and client libraries read before they touch a resource:
// /version, /api, /apis, /apis/{group}, and the APIResourceList of each group-version, built
// from ServedResourceTypes(). Pure functions; any thread.
#pragma once

#include <optional>
#include <string>

#include "nlohmann/json.hpp"

namespace podlb::sandbox {

nlohmann::json VersionDocument();
nlohmann::json ApiVersionsDocument(const std::string& server_address);
nlohmann::json ApiGroupListDocument();
std::optional<nlohmann::json> ApiGroupDocument(const std::string& group);
// The APIResourceList for "v1" (group "") or e.g. "apps"/"v1"; nullopt if not served.
std::optional<nlohmann::json> ApiResourceListDocument(const std::string& group,
                                                      const std::string& version);

// OpenAPI v3, just enough for kubectl: the root lists one document per group-version, and each
// document declares the PATCH operations with their `fieldValidation` query parameter, so
// kubectl leaves validation to the server instead of downloading schemas to validate locally.
nlohmann::json OpenApiV3Root();
// `gv_path` is "api/v1" or "apis/{group}/{version}".
std::optional<nlohmann::json> OpenApiV3Document(const std::string& gv_path);

}  // namespace podlb::sandbox
