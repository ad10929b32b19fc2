// Field numbers from k8s.io/api/authentication/v1/generated.proto (TokenRequest, TokenRequestSpec,
// BoundObjectReference) and authorization/v1/generated.proto (SelfSubjectAccessReview and its
// attributes), and k8s.io/apimachinery/pkg/runtime/generated.proto (Unknown, TypeMeta).
#include "sandbox/apiserver/protobuf_body.h"

#include <cstdint>
#include <map>
#include <vector>

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

// One message's fields: numbers → the values seen (varints as numbers, length-delimited as
// bytes), in order.
struct Fields {
  std::map<int, std::vector<uint64_t>> varints;
  std::map<int, std::vector<std::string>> bytes;

  std::string String(int field) const {
    auto it = bytes.find(field);
    return it == bytes.end() || it->second.empty() ? "" : it->second.back();
  }
  bool Has(int field) const { return varints.count(field) > 0 || bytes.count(field) > 0; }
};

bool ReadVarint(const std::string& data, size_t* pos, uint64_t* out) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*pos >= data.size()) return false;
    auto byte = static_cast<uint8_t>(data[(*pos)++]);
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *out = value;
      return true;
    }
  }
  return false;
}

absl::StatusOr<Fields> Parse(const std::string& data) {
  Fields fields;
  size_t pos = 0;
  while (pos < data.size()) {
    uint64_t tag;
    if (!ReadVarint(data, &pos, &tag)) return absl::InvalidArgumentError("truncated protobuf tag");
    int field = static_cast<int>(tag >> 3);
    switch (tag & 7) {
      case 0: {
        uint64_t value;
        if (!ReadVarint(data, &pos, &value)) {
          return absl::InvalidArgumentError("truncated protobuf varint");
        }
        fields.varints[field].push_back(value);
        break;
      }
      case 2: {
        uint64_t size;
        if (!ReadVarint(data, &pos, &size) || size > data.size() - pos) {
          return absl::InvalidArgumentError("truncated protobuf length-delimited field");
        }
        fields.bytes[field].push_back(data.substr(pos, size));
        pos += size;
        break;
      }
      case 1:
        pos += 8;
        break;
      case 5:
        pos += 4;
        break;
      default:
        return absl::InvalidArgumentError("unsupported protobuf wire type");
    }
    if (pos > data.size()) return absl::InvalidArgumentError("truncated protobuf field");
  }
  return fields;
}

json TokenRequest(const Fields& message) {
  json out = {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}};
  json spec = json::object();
  auto parsed = Parse(message.String(2));
  if (parsed.ok()) {
    if (auto it = parsed->bytes.find(1); it != parsed->bytes.end()) spec["audiences"] = it->second;
    if (auto it = parsed->varints.find(4); it != parsed->varints.end()) {
      spec["expirationSeconds"] = static_cast<int64_t>(it->second.back());
    }
    if (parsed->Has(3)) {
      auto ref = Parse(parsed->String(3));
      if (ref.ok()) {
        spec["boundObjectRef"] = {{"kind", ref->String(1)},
                                  {"apiVersion", ref->String(2)},
                                  {"name", ref->String(3)},
                                  {"uid", ref->String(4)}};
      }
    }
  }
  out["spec"] = spec;
  return out;
}

json SelfSubjectAccessReview(const Fields& message) {
  json out = {{"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SelfSubjectAccessReview"}};
  json spec = json::object();
  auto parsed = Parse(message.String(2));
  if (parsed.ok()) {
    if (parsed->Has(1)) {
      auto a = Parse(parsed->String(1));
      if (a.ok()) {
        spec["resourceAttributes"] = {{"namespace", a->String(1)}, {"verb", a->String(2)},
                                      {"group", a->String(3)},     {"version", a->String(4)},
                                      {"resource", a->String(5)},  {"subresource", a->String(6)},
                                      {"name", a->String(7)}};
      }
    } else if (parsed->Has(2)) {
      auto a = Parse(parsed->String(2));
      if (a.ok()) spec["nonResourceAttributes"] = {{"path", a->String(1)}, {"verb", a->String(2)}};
    }
  }
  out["spec"] = spec;
  return out;
}

}  // namespace

absl::StatusOr<json> DecodeProtobufBody(const std::string& kind, const std::string& body) {
  static constexpr char kMagic[] = {'k', '8', 's', '\0'};
  if (body.size() < 4 || body.compare(0, 4, std::string(kMagic, 4)) != 0) {
    return absl::InvalidArgumentError("the protobuf body does not start with the k8s magic");
  }
  auto envelope = Parse(body.substr(4));
  if (!envelope.ok()) return envelope.status();
  auto type_meta = Parse(envelope->String(1));
  if (!type_meta.ok()) return type_meta.status();
  if (type_meta->String(2) != kind) {
    return absl::InvalidArgumentError("the protobuf body holds a " + type_meta->String(2) +
                                      ", not a " + kind);
  }
  auto message = Parse(envelope->String(2));
  if (!message.ok()) return message.status();
  if (kind == "TokenRequest") return TokenRequest(*message);
  if (kind == "SelfSubjectAccessReview") return SelfSubjectAccessReview(*message);
  return absl::InvalidArgumentError("protobuf bodies of " + kind + " are not read here");
}

}  // namespace podlb::sandbox
