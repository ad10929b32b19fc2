#include "sandbox/apiserver/strategic_merge_patch.h"

#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "sandbox/apiserver/object_schemas.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

constexpr std::string_view kSetElementOrder = "$setElementOrder/";
constexpr std::string_view kDeleteFromPrimitiveList = "$deleteFromPrimitiveList/";

bool IsDirective(const std::string& key) { return !key.empty() && key[0] == '$'; }

struct ListMeta {
  bool merge = false;
  std::string merge_key;  // empty: a list of primitives (union) when merge
};

ListMeta ListMetaOf(const json* schema) {
  ListMeta meta;
  if (schema == nullptr) return meta;
  std::string strategy = schema->value("x-kubernetes-patch-strategy", "");
  for (absl::string_view part : absl::StrSplit(strategy, ',')) meta.merge |= part == "merge";
  meta.merge_key = schema->value("x-kubernetes-patch-merge-key", "");
  return meta;
}

const json& ItemSchema(const json* list_schema) {
  static const json* const kEmpty = new json(json::object());
  if (list_schema == nullptr || !list_schema->contains("items")) return *kEmpty;
  return ResolveSchema((*list_schema)["items"]);
}

absl::StatusOr<json> MergeMap(const json& original, const json& patch, const json& schema);

// A patch value written where nothing was: its directives removed.
absl::StatusOr<json> Strip(const json& value, const json& schema) {
  if (value.is_object()) return MergeMap(json::object(), value, schema);
  return value;
}

bool SameKey(const json& a, const json& b, const std::string& key) {
  return a.is_object() && b.is_object() && a.contains(key) && b.contains(key) && a[key] == b[key];
}

absl::StatusOr<json> MergeList(const json& original, const json& patch, const json* list_schema,
                               const ListMeta& meta) {
  const json& items = ItemSchema(list_schema);
  for (const auto& element : patch) {
    if (element.is_object() && element.value("$patch", "") == "replace") {
      json replaced = json::array();
      for (const auto& e : patch) {
        if (e.is_object() && e.contains("$patch")) continue;
        auto stripped = Strip(e, items);
        if (!stripped.ok()) return stripped.status();
        replaced.push_back(std::move(*stripped));
      }
      return replaced;
    }
  }
  json result = original.is_array() ? original : json::array();
  if (meta.merge_key.empty()) {
    for (const auto& value : patch) {
      if (std::find(result.begin(), result.end(), value) == result.end()) result.push_back(value);
    }
    return result;
  }
  for (const auto& element : patch) {
    if (!element.is_object() || !element.contains(meta.merge_key)) {
      return absl::InvalidArgumentError(
          absl::StrCat("map: ", element.dump(), " does not contain declared merge key: ",
                       meta.merge_key));
    }
    std::string directive = element.value("$patch", "");
    auto match = std::find_if(result.begin(), result.end(), [&](const json& e) {
      return SameKey(e, element, meta.merge_key);
    });
    if (directive == "delete") {
      result.erase(std::remove_if(result.begin(), result.end(),
                                  [&](const json& e) { return SameKey(e, element, meta.merge_key); }),
                   result.end());
      continue;
    }
    if (match != result.end()) {
      auto merged = MergeMap(*match, element, items);
      if (!merged.ok()) return merged.status();
      *match = std::move(*merged);
    } else {
      auto added = Strip(element, items);
      if (!added.ok()) return added.status();
      result.push_back(std::move(*added));
    }
  }
  return result;
}

// $setElementOrder/FIELD: the patch's order for the elements it names; elements only the server
// has keep their places after them.
json Reorder(const json& list, const json& order, const std::string& merge_key) {
  if (!list.is_array() || !order.is_array()) return list;
  json ordered = json::array();
  std::vector<bool> used(list.size(), false);
  for (const auto& wanted : order) {
    for (size_t i = 0; i < list.size(); ++i) {
      bool same = merge_key.empty() ? list[i] == wanted : SameKey(list[i], wanted, merge_key);
      if (!used[i] && same) {
        ordered.push_back(list[i]);
        used[i] = true;
        break;
      }
    }
  }
  for (size_t i = 0; i < list.size(); ++i) {
    if (!used[i]) ordered.push_back(list[i]);
  }
  return ordered;
}

absl::StatusOr<json> MergeMap(const json& original, const json& patch, const json& schema) {
  if (!patch.is_object()) return patch;
  if (patch.contains("$patch")) {
    std::string directive = patch["$patch"].is_string() ? patch["$patch"].get<std::string>() : "";
    if (directive == "replace") {
      json replaced = patch;
      replaced.erase("$patch");
      return Strip(replaced, schema);
    }
    if (directive == "delete") return json(nullptr);
    if (directive != "merge") {
      return absl::InvalidArgumentError(
          absl::StrCat("Unknown patch type: ", directive, " in map: ", patch.dump()));
    }
  }
  json result = original.is_object() ? original : json::object();
  if (auto retain = patch.find("$retainKeys"); retain != patch.end()) {
    if (!retain->is_array()) {
      return absl::InvalidArgumentError("$retainKeys must be a list of field names");
    }
    for (auto it = result.begin(); it != result.end();) {
      if (std::find(retain->begin(), retain->end(), it.key()) == retain->end()) {
        it = result.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& [key, value] : patch.items()) {
    if (key.starts_with(kDeleteFromPrimitiveList)) {
      std::string field = key.substr(kDeleteFromPrimitiveList.size());
      if (result.contains(field) && result[field].is_array() && value.is_array()) {
        json& list = result[field];
        const json& doomed = value;  // a named reference: clang 14 cannot capture a binding
        list.erase(std::remove_if(list.begin(), list.end(),
                                  [&](const json& e) {
                                    return std::find(doomed.begin(), doomed.end(), e) != doomed.end();
                                  }),
                   list.end());
      }
      continue;
    }
    if (IsDirective(key)) continue;
    if (value.is_null()) {
      result.erase(key);
      continue;
    }
    const json* property = PropertySchema(schema, key);
    static const json* const kAny = new json(json::object());
    const json& sub = property != nullptr ? *property : *kAny;
    if (value.is_object()) {
      const json& declared = ResolveSchema(schema).value("properties", json::object());
      if (declared.contains(key) &&
          declared[key].value("x-kubernetes-patch-strategy", "") == "replace") {
        auto replaced = Strip(value, sub);
        if (!replaced.ok()) return replaced.status();
        result[key] = std::move(*replaced);
        continue;
      }
      auto merged = MergeMap(result.contains(key) ? result[key] : json(nullptr), value, sub);
      if (!merged.ok()) return merged.status();
      if (merged->is_null()) {
        result.erase(key);
      } else {
        result[key] = std::move(*merged);
      }
      continue;
    }
    if (value.is_array()) {
      ListMeta meta = ListMetaOf(property);
      if (meta.merge) {
        auto merged = MergeList(result.contains(key) ? result[key] : json(nullptr), value,
                                property, meta);
        if (!merged.ok()) return merged.status();
        result[key] = std::move(*merged);
      } else {
        json replaced = json::array();
        for (const auto& e : value) {
          auto stripped = Strip(e, ItemSchema(property));
          if (!stripped.ok()) return stripped.status();
          replaced.push_back(std::move(*stripped));
        }
        result[key] = std::move(replaced);
      }
      continue;
    }
    result[key] = value;
  }
  for (const auto& [key, value] : patch.items()) {
    if (!key.starts_with(kSetElementOrder)) continue;
    std::string field = key.substr(kSetElementOrder.size());
    if (!result.contains(field)) continue;
    ListMeta meta = ListMetaOf(PropertySchema(schema, field));
    result[field] = Reorder(result[field], value, meta.merge_key);
  }
  return result;
}

}  // namespace

absl::StatusOr<json> StrategicMergePatch(const json& original, const json& patch,
                                         const json& schema) {
  if (!patch.is_object()) {
    return absl::InvalidArgumentError("a strategic merge patch must be a JSON object");
  }
  auto result = MergeMap(original, patch, schema);
  if (!result.ok()) return result.status();
  if (!result->is_object()) {
    return absl::InvalidArgumentError("the patch deletes the whole object ($patch: delete)");
  }
  return result;
}

}  // namespace podlb::sandbox
