// The Swagger document carries the definitions of object_schemas.h; the protobuf encoder writes gnostic's
// messages by hand (field numbers from OpenAPIv2.proto, quoted beside each) rather than linking
// generated code for a schema of ~60 messages of which it needs nine.
#include "sandbox/apiserver/openapi_v2.h"

#include <cstdint>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"
#include "sandbox/apiserver/object_schemas.h"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

// Protocol-buffer wire format, only what gnostic's messages need here: strings, bools and nested
// messages (all length-delimited or varint).
class ProtoWriter {
 public:
  void Bytes(int field, std::string_view value) {
    Tag(field, 2);
    Varint(value.size());
    out_.append(value);
  }
  void Bool(int field, bool value) {
    Tag(field, 0);
    Varint(value ? 1 : 0);
  }
  const std::string& data() const { return out_; }

 private:
  void Tag(int field, int wire_type) { Varint((static_cast<uint64_t>(field) << 3) | wire_type); }
  void Varint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  std::string out_;
};

absl::StatusOr<std::string> EncodeSchema(const json& schema, const std::string& where);

// NamedAny { name = 1; Any value = 2 }, Any { yaml = 2 }: a vendor extension's value travels as
// YAML text, and JSON is YAML.
std::string EncodeVendorExtension(const std::string& name, const json& value) {
  ProtoWriter any;
  any.Bytes(2, value.dump());
  ProtoWriter named;
  named.Bytes(1, name);
  named.Bytes(2, any.data());
  return named.data();
}

// Properties and Definitions: { repeated NamedSchema additional_properties = 1 }, NamedSchema
// { name = 1; Schema value = 2 }.
absl::StatusOr<std::string> EncodeNamedSchemas(const json& map, const std::string& where) {
  if (!map.is_object()) return absl::InvalidArgumentError(where + ": expected an object");
  ProtoWriter out;
  for (const auto& [name, schema] : map.items()) {
    ASSIGN_OR_RETURN(std::string encoded, EncodeSchema(schema, where + "." + name));
    ProtoWriter named;
    named.Bytes(1, name);
    named.Bytes(2, encoded);
    out.Bytes(1, named.data());
  }
  return out.data();
}

absl::StatusOr<std::string> EncodeSchema(const json& schema, const std::string& where) {
  if (!schema.is_object()) return absl::InvalidArgumentError(where + ": expected an object");
  ProtoWriter out;
  auto string_at = [&](const std::string& key) -> absl::StatusOr<std::string> {
    const json& v = schema[key];
    if (!v.is_string())
      return absl::InvalidArgumentError(where + "." + key + ": expected a string");
    return v.get<std::string>();
  };
  for (const auto& [key, value] : schema.items()) {
    if (key == "$ref") {  // string _ref = 1
      ASSIGN_OR_RETURN(std::string ref, string_at(key));
      out.Bytes(1, ref);
    } else if (key == "format") {  // string format = 2
      ASSIGN_OR_RETURN(std::string format, string_at(key));
      out.Bytes(2, format);
    } else if (key == "description") {  // string description = 4
      ASSIGN_OR_RETURN(std::string description, string_at(key));
      out.Bytes(4, description);
    } else if (key == "required") {  // repeated string required = 19
      for (const auto& name : value) {
        if (!name.is_string())
          return absl::InvalidArgumentError(where + ".required: expected strings");
        out.Bytes(19, name.get<std::string>());
      }
    } else if (key == "additionalProperties") {
      // AdditionalPropertiesItem additional_properties = 21 { Schema schema = 1; bool boolean = 2 }
      ProtoWriter item;
      if (value.is_boolean()) {
        item.Bool(2, value.get<bool>());
      } else {
        ASSIGN_OR_RETURN(std::string sub, EncodeSchema(value, where + ".additionalProperties"));
        item.Bytes(1, sub);
      }
      out.Bytes(21, item.data());
    } else if (key == "type") {  // TypeItem type = 22 { repeated string value = 1 }
      ProtoWriter item;
      for (const auto& t : value.is_array() ? value : json::array({value})) {
        if (!t.is_string()) return absl::InvalidArgumentError(where + ".type: expected strings");
        item.Bytes(1, t.get<std::string>());
      }
      out.Bytes(22, item.data());
    } else if (key == "items") {  // ItemsItem items = 23 { repeated Schema schema = 1 }
      ProtoWriter item;
      for (const auto& sub : value.is_array() ? value : json::array({value})) {
        ASSIGN_OR_RETURN(std::string encoded, EncodeSchema(sub, where + ".items"));
        item.Bytes(1, encoded);
      }
      out.Bytes(23, item.data());
    } else if (key == "properties") {  // Properties properties = 25
      ASSIGN_OR_RETURN(std::string properties, EncodeNamedSchemas(value, where + ".properties"));
      out.Bytes(25, properties);
    } else if (key.rfind("x-", 0) == 0) {  // repeated NamedAny vendor_extension = 31
      out.Bytes(31, EncodeVendorExtension(key, value));
    } else {
      return absl::InvalidArgumentError(where + ": schema keyword \"" + key +
                                        "\" has no protobuf encoding here");
    }
  }
  return out.data();
}

}  // namespace

json OpenApiV2Document() {
  return {{"swagger", "2.0"},
          {"info", {{"title", "Kubernetes"}, {"version", "v1.32.0"}}},
          {"paths", json::object()},
          {"definitions", SchemaDefinitions()}};
}

absl::StatusOr<std::string> OpenApiV2Protobuf(const json& document) {
  if (!document.is_object() || !document.contains("swagger") || !document["swagger"].is_string())
    return absl::InvalidArgumentError("openapi v2: \"swagger\" missing");
  ProtoWriter out;
  out.Bytes(1, document["swagger"].get<std::string>());  // string swagger = 1
  ProtoWriter info;                                      // Info info = 2 { title = 1; version = 2 }
  info.Bytes(1, document["info"].value("title", ""));
  info.Bytes(2, document["info"].value("version", ""));
  out.Bytes(2, info.data());
  if (document.contains("paths") && !document["paths"].empty()) {
    return absl::InvalidArgumentError("openapi v2: paths have no protobuf encoding here");
  }
  out.Bytes(8, "");  // Paths paths = 8, present and empty
  ASSIGN_OR_RETURN(std::string definitions,
                   EncodeNamedSchemas(document["definitions"], "definitions"));
  out.Bytes(9, definitions);  // Definitions definitions = 9
  return out.data();
}

OpenApiV2Format NegotiateOpenApiV2(const std::string& accept) {
  if (absl::StripAsciiWhitespace(accept).empty()) return OpenApiV2Format::kJson;
  OpenApiV2Format best = OpenApiV2Format::kNotAcceptable;
  double best_q = 0;
  for (absl::string_view entry : absl::StrSplit(accept, ',')) {
    std::vector<absl::string_view> parts = absl::StrSplit(entry, ';');
    std::string type = absl::AsciiStrToLower(absl::StripAsciiWhitespace(parts[0]));
    double q = 1;
    for (size_t i = 1; i < parts.size(); ++i) {
      absl::string_view param = absl::StripAsciiWhitespace(parts[i]);
      if (absl::ConsumePrefix(&param, "q=") && !absl::SimpleAtod(param, &q)) q = 0;
    }
    OpenApiV2Format format;
    if (type == "application/json" || type == "application/*" || type == "*/*") {
      format = OpenApiV2Format::kJson;
    } else if (type == "application/com.github.proto-openapi.spec.v2@v1.0+protobuf" ||
               type == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf") {
      format = OpenApiV2Format::kProtobuf;
    } else {
      continue;
    }
    if (q > best_q) {
      best = format;
      best_q = q;
    }
  }
  return best;
}

}  // namespace podlb::sandbox
