#include "sandbox/apiserver/continue_token.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"

namespace podlb::sandbox {
namespace {

constexpr char kVersion[] = "meta.k8s.io/v1";

// The real server runs path.Clean over "/" + start and refuses a key it changes, so a token
// cannot climb out of its collection ("../other-namespace/...").
bool CleanPath(const std::string& start) {
  if (start.back() == '/') return false;
  for (absl::string_view segment : absl::StrSplit(start, '/')) {
    if (segment.empty() || segment == "." || segment == "..") return false;
  }
  return true;
}

}  // namespace

std::string EncodeContinueAt(const std::string& start, int64_t resource_version) {
  nlohmann::json token = {{"v", kVersion}, {"rv", resource_version}, {"start", start}};
  return absl::WebSafeBase64Escape(token.dump());
}

std::string EncodeContinue(const std::string& last_key, int64_t resource_version) {
  // The key right after last_key in byte order: the server resumes there.
  return EncodeContinueAt(last_key + std::string(1, '\0'), resource_version);
}

absl::StatusOr<ContinuePosition> DecodeContinue(const std::string& token) {
  std::string data;
  // Go's RawURLEncoding, which the real server uses, has no padding.
  if (token.find('=') != std::string::npos || !absl::WebSafeBase64Unescape(token, &data)) {
    return absl::InvalidArgumentError("continue key is not valid: illegal base64 data");
  }
  nlohmann::json j = nlohmann::json::parse(data, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError("continue key is not valid: not a JSON object");
  }
  auto v = j.find("v");
  if (v == j.end() || !v->is_string() || *v != kVersion) {
    return absl::InvalidArgumentError(
        "continue key is not valid: server does not recognize this encoded version " +
        (v == j.end() ? std::string() : v->dump()));
  }
  auto rv = j.find("rv");
  auto start = j.find("start");
  if (rv == j.end() || !rv->is_number_integer() || rv->get<int64_t>() == 0 ||
      rv->get<int64_t>() < -1) {
    return absl::InvalidArgumentError(
        "continue key is not valid: incorrect encoded start resourceVersion (version "
        "meta.k8s.io/v1)");
  }
  if (start == j.end() || !start->is_string() || start->get<std::string>().empty()) {
    return absl::InvalidArgumentError(
        "continue key is not valid: encoded start key empty (version meta.k8s.io/v1)");
  }
  ContinuePosition position{rv->get<int64_t>(), start->get<std::string>()};
  if (!CleanPath(position.start)) {
    return absl::InvalidArgumentError("continue key is not valid: " + position.start);
  }
  return position;
}

}  // namespace podlb::sandbox
