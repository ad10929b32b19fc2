// Request bodies in Kubernetes' protobuf encoding (application/vnd.kubernetes.protobuf): the
// "k8s\0" magic, a runtime.Unknown envelope, and the object's message. client-go's typed clients
// in kubectl send it for some built-in kinds (`kubectl create token` posts its TokenRequest this
// way, `kubectl auth can-i` its SelfSubjectAccessReview); the stand-in reads the fields of those
// two kinds it uses and answers in JSON, which those clients also accept. Pure functions.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace podlb::sandbox {

inline constexpr char kProtobufContentType[] = "application/vnd.kubernetes.protobuf";

// The JSON form of a protobuf TokenRequest or SelfSubjectAccessReview (`kind`); InvalidArgument
// for another kind or a malformed body.
absl::StatusOr<nlohmann::json> DecodeProtobufBody(const std::string& kind,
                                                  const std::string& body);

}  // namespace podlb::sandbox
