// The OpenAPI v2 schemas of the kinds the API-server stand-in serves, with the patch metadata
// of the real API (x-kubernetes-patch-strategy, x-kubernetes-patch-merge-key, retainKeys), written
// once and read by three parts that must agree: /openapi/v2 (kubectl 1.20 validates manifests
// against it, and kubectl computes client-side apply's strategic merge patch from it), the
// server's strategic merge patch (strategic_merge_patch.h), and the decoding and required-field
// checks of every write. Struct types podlb's manifests use are spelled out field by field;
// deeper ones (probes, affinity, security contexts) are `type: object` and accept any content.
// Pure functions; any thread.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

// Every definition, keyed by its OpenAPI name ("io.k8s.api.apps.v1.DeploymentSpec").
const nlohmann::json& SchemaDefinitions();
// "io.k8s.api.apps.v1.Deployment" for a served type.
std::string SchemaDefinitionName(const ResourceType& type);
// A schema with its "$ref" resolved (one level); the schema itself when it has none.
const nlohmann::json& ResolveSchema(const nlohmann::json& schema);
// The schema of property `field` of an object schema, resolved; nullptr when not declared.
const nlohmann::json* PropertySchema(const nlohmann::json& schema, const std::string& field);

// What Go's JSON decoder says of a value of the wrong type, as the real server reports it (400
// BadRequest): "Deployment in version \"v1\" cannot be handled as a Deployment: json: cannot
// unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32". nullopt
// when `object` decodes.
std::optional<std::string> DecodeError(const ResourceType& type, const nlohmann::json& object);

// Required fields the schemas declare and `object` lacks, as field paths with indices
// ("spec.template.spec.containers[0].name").
std::vector<std::string> MissingRequiredFields(const ResourceType& type,
                                               const nlohmann::json& object);

}  // namespace podlb::sandbox
