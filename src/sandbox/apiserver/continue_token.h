// The continue token of a chunked list, in the real API server's format: base64url (no padding)
// of {"v":"meta.k8s.io/v1","rv":RV,"start":"KEY\u0000"}, where KEY is the last key returned,
// relative to the collection. Clients treat it as opaque; the server decodes it into "read the
// snapshot RV from KEY on". Pure functions; any thread.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace podlb::sandbox {

struct ContinuePosition {
  // The snapshot to read; -1: the latest version (the token a 410 Expired hands out to finish
  // a list inconsistently).
  int64_t resource_version = 0;
  std::string start;  // first relative key to read (inclusive)
};

// The token for the page after `last_key`.
std::string EncodeContinue(const std::string& last_key, int64_t resource_version);
// The token that restarts at exactly `start` (a decoded position handed back).
std::string EncodeContinueAt(const std::string& start, int64_t resource_version);

// InvalidArgument with the real server's wording ("continue key is not valid: ...") for a token
// that is not one of ours.
absl::StatusOr<ContinuePosition> DecodeContinue(const std::string& token);

}  // namespace podlb::sandbox
