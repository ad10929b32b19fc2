// Strategic merge patch (application/strategic-merge-patch+json) as apimachinery's
// strategicpatch.StrategicMergePatch applies it, with the patch metadata of object_schemas.h:
// lists with a merge key merge element by element ({"$patch": "delete"} removes one, "$patch":
// "replace" replaces the list), primitive lists with the merge strategy take the union, other
// lists are replaced; maps merge and null deletes a key; the directives $patch (replace, delete,
// merge), $retainKeys, $setElementOrder/FIELD and $deleteFromPrimitiveList/FIELD are honoured
// and never stored. This is what kubectl's client-side apply sends for built-in kinds.
// Pure functions; any thread.
#pragma once

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace podlb::sandbox {

// `schema` is the object's OpenAPI schema (SchemaDefinitions()); fields it does not declare
// merge as in a JSON merge patch. InvalidArgument for a malformed patch.
absl::StatusOr<nlohmann::json> StrategicMergePatch(const nlohmann::json& original,
                                                   const nlohmann::json& patch,
                                                   const nlohmann::json& schema);

}  // namespace podlb::sandbox
