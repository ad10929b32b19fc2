#include "balancing/picker.h"

namespace podlb::balancing {

void PolicyRegistry::Register(std::unique_ptr<PolicyFactory> factory) {
  const PolicyKind kind = factory->kind();
  factories_[kind] = std::move(factory);
}

const PolicyFactory* PolicyRegistry::Find(PolicyKind kind) const {
  auto it = factories_.find(kind);
  return it == factories_.end() ? nullptr : it->second.get();
}

void RegisterBuiltinPolicies(PolicyRegistry& registry) {
  RegisterRoundRobin(registry);
  RegisterLeastRequest(registry);
  RegisterPeakEwma(registry);
  RegisterRingHash(registry);
}

const PolicyRegistry& BuiltinPolicies() {
  // Immutable once built (function-local static: built on first use, thread-safe).
  static const PolicyRegistry* const registry = [] {
    auto* r = new PolicyRegistry;
    RegisterBuiltinPolicies(*r);
    return r;
  }();
  return *registry;
}

}  // namespace podlb::balancing
