#include "xds/resource_names.h"

namespace podlb::xds {

std::shared_ptr<ResourceNameTable> ResourceNameTable::Create() {
  return std::shared_ptr<ResourceNameTable>(new ResourceNameTable());
}

ResourceNameConstSharedPtr ResourceNameTable::Intern(std::string_view text) {
  absl::MutexLock lock(&mu_);
  auto it = names_.find(text);
  if (it != names_.end()) {
    // An expired slot is a name whose last holder is releasing it right now (waiting for mu_):
    // a new object takes the slot, and that Release leaves the new one alone.
    if (auto name = it->second.name.lock()) return name;
  }
  auto* raw = new ResourceName{std::string(text), std::nullopt};
  if (auto key = ServiceKey::Parse(raw->text); key.ok()) raw->key = std::move(*key);
  std::shared_ptr<ResourceNameTable> table = shared_from_this();
  ResourceNameConstSharedPtr name(raw, [table](const ResourceName* gone) {
    table->Release(gone);
    delete gone;
  });
  if (it != names_.end()) names_.erase(it);  // its key views the dying object's text
  names_.emplace(std::string_view(raw->text), Slot{raw, name});
  return name;
}

void ResourceNameTable::Release(const ResourceName* name) {
  absl::MutexLock lock(&mu_);
  auto it = names_.find(std::string_view(name->text));
  if (it != names_.end() && it->second.raw == name) names_.erase(it);
}

size_t ResourceNameTable::size() const {
  absl::MutexLock lock(&mu_);
  return names_.size();
}

}  // namespace podlb::xds
