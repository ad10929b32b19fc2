// Reading a field deep inside a Kubernetes object without a chain of checks at every step.
#pragma once

#include <initializer_list>

#include "nlohmann/json.hpp"

namespace podlb::sandbox {

// The value at `path` (object keys) in `object`, or a null json when a step is missing or not
// an object. The reference stays valid as long as `object` does.
inline const nlohmann::json& At(const nlohmann::json& object,
                                std::initializer_list<const char*> path) {
  static const nlohmann::json* const kNull = new nlohmann::json(nullptr);
  const nlohmann::json* node = &object;
  for (const char* key : path) {
    if (!node->is_object()) return *kNull;
    auto it = node->find(key);
    if (it == node->end()) return *kNull;
    node = &*it;
  }
  return *node;
}

}  // namespace podlb::sandbox
