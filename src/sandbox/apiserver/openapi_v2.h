// OpenAPI v2 (Swagger 2.0) for the API-server stand-in, as /openapi/v2 serves it: definitions for
// the served kinds (with `x-kubernetes-group-version-kind` and their required fields), in JSON or
// in gnostic's protobuf encoding. kubectl up to 1.2x downloads the protobuf form to validate
// manifests on the client and refuses to create anything when it cannot. Pure functions; any
// thread.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace podlb::sandbox {

// The Content-Type of the protobuf form. Clients ask for ".spec.v2@v1.0+protobuf" (or this),
// but the real server answers with the dotted form: Go's mime.ParseMediaType rejects '@', and
// client-go 1.20 fails the request on it ("mime: unexpected content after media subtype").
inline constexpr char kOpenApiV2ProtobufType[] =
    "application/com.github.proto-openapi.spec.v2.v1.0+protobuf";

nlohmann::json OpenApiV2Document();

// `document` as an openapi.v2.Document message (github.com/google/gnostic, OpenAPIv2.proto).
// Covers the Swagger subset OpenApiV2Document uses; anything else is InvalidArgument.
absl::StatusOr<std::string> OpenApiV2Protobuf(const nlohmann::json& document);

enum class OpenApiV2Format { kJson, kProtobuf, kNotAcceptable };
// Content negotiation on an Accept header: the acceptable type with the highest q, the first on
// a tie; no header (or */*) is JSON.
OpenApiV2Format NegotiateOpenApiV2(const std::string& accept);

}  // namespace podlb::sandbox
