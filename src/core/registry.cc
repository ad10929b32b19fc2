#include "core/registry.h"

#include <tuple>

namespace podlb {

Subscription::~Subscription() { registry_->Unsubscribe(id_); }

std::shared_ptr<EndpointSlot> Registry::SlotLocked(const ServiceKey& key) {
  auto& slot = slots_[key];
  if (!slot) slot = std::make_shared<EndpointSlot>();
  return slot;
}

EndpointSlotConstSharedPtr Registry::Slot(const ServiceKey& key) {
  absl::MutexLock lock(&mu_);
  return SlotLocked(key);
}

EndpointSetConstSharedPtr Registry::Current(const ServiceKey& key) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(key);
  return it == slots_.end() ? nullptr : it->second->Load();
}

std::vector<ServiceKey> Registry::Keys() const {
  absl::MutexLock lock(&mu_);
  std::vector<ServiceKey> keys;
  for (const auto& [key, slot] : slots_) {
    if (slot->Load() != nullptr) keys.push_back(key);
  }
  return keys;
}

EndpointSetConstSharedPtr Registry::Publish(const std::vector<ServiceKey>& keys,
                                            std::vector<Endpoint> endpoints,
                                            std::map<std::string, std::string> annotations) {
  if (keys.empty()) return nullptr;
  absl::MutexLock notify_lock(&notify_mu_);
  std::vector<std::tuple<ServiceKey, EndpointSetCallback, EndpointSetConstSharedPtr>> to_call;
  EndpointSetConstSharedPtr set;
  {
    absl::MutexLock lock(&mu_);
    auto candidate = std::make_shared<const EndpointSet>(keys[0], next_version_,
                                                         std::move(endpoints),
                                                         std::move(annotations));
    for (const auto& key : keys) {
      auto slot = SlotLocked(key);
      auto current = slot->Load();
      if (current != nullptr && current->SameContent(*candidate)) {
        if (key == keys[0]) set = current;
        continue;
      }
      slot->current_.store(candidate, std::memory_order_release);
      set = candidate;
      for (const auto& [id, sub] : subscribers_) {
        if (!sub.key.has_value() || *sub.key == key) to_call.emplace_back(key, sub.callback, candidate);
      }
    }
    if (set == candidate) ++next_version_;
    if (set == nullptr) set = slots_[keys[0]]->Load();
  }
  // Callbacks run under notify_mu_ only, so they may read the registry (Current, Slot).
  for (const auto& [key, callback, published] : to_call) callback(key, published);
  return set;
}

std::unique_ptr<Subscription> Registry::AddSubscriber(std::optional<ServiceKey> key,
                                                      EndpointSetCallback callback) {
  absl::MutexLock notify_lock(&notify_mu_);
  std::vector<std::pair<ServiceKey, EndpointSetConstSharedPtr>> initial;
  uint64_t id;
  {
    absl::MutexLock lock(&mu_);
    id = next_subscriber_id_++;
    for (const auto& [k, slot] : slots_) {
      if (key.has_value() && *key != k) continue;
      if (auto set = slot->Load()) initial.emplace_back(k, set);
    }
    subscribers_[id] = Subscriber{key, callback};
  }
  for (const auto& [k, set] : initial) callback(k, set);
  return std::unique_ptr<Subscription>(new Subscription(this, id));
}

std::unique_ptr<Subscription> Registry::Subscribe(const ServiceKey& key,
                                                  EndpointSetCallback callback) {
  return AddSubscriber(key, std::move(callback));
}

std::unique_ptr<Subscription> Registry::SubscribeAll(EndpointSetCallback callback) {
  return AddSubscriber(std::nullopt, std::move(callback));
}

void Registry::Unsubscribe(uint64_t id) {
  absl::MutexLock notify_lock(&notify_mu_);
  absl::MutexLock lock(&mu_);
  subscribers_.erase(id);
}

}  // namespace podlb
