#include "core/registry.h"

#include <tuple>

namespace podlb {

Subscription::~Subscription() { registry_->Unsubscribe(id_); }

std::shared_ptr<EndpointSlot> Registry::SlotLocked(const ServiceKey& key) {
  auto& slot = slots_[key];
  if (!slot) {
    slot = std::make_shared<EndpointSlot>();
    absent_.insert(key);  // until published
  }
  return slot;
}

void Registry::PruneLocked() const {
  for (auto it = absent_.begin(); it != absent_.end();) {
    auto slot = slots_.find(*it);
    // use_count 1: only the map holds it, and only code under mu_ can copy it from there.
    if (slot == slots_.end() || slot->second.use_count() == 1) {
      if (slot != slots_.end()) slots_.erase(slot);
      it = absent_.erase(it);
    } else {
      ++it;
    }
  }
}

EndpointSlotConstSharedPtr Registry::Slot(const ServiceKey& key) {
  absl::MutexLock lock(&mu_);
  return SlotLocked(key);
}

EndpointSetConstSharedPtr Registry::Current(const ServiceKey& key) {
  absl::MutexLock lock(&mu_);
  auto it = slots_.find(key);
  if (it == slots_.end() || absent_.count(key)) return nullptr;
  return it->second->Load();
}

std::vector<ServiceKey> Registry::Keys() const {
  absl::MutexLock lock(&mu_);
  PruneLocked();
  std::vector<ServiceKey> keys;
  for (const auto& [key, slot] : slots_) {
    if (!absent_.count(key)) keys.push_back(key);
  }
  return keys;
}

size_t Registry::SlotCount() const {
  absl::MutexLock lock(&mu_);
  PruneLocked();
  return slots_.size();
}

void Registry::Remove(const std::vector<ServiceKey>& keys) {
  absl::MutexLock notify_lock(&notify_mu_);
  std::vector<std::tuple<ServiceKey, EndpointSetCallback, EndpointSetConstSharedPtr>> to_call;
  {
    absl::MutexLock lock(&mu_);
    for (const ServiceKey& key : keys) {
      auto it = slots_.find(key);
      if (it == slots_.end() || absent_.count(key)) continue;
      // Holders of the slot (a proxy Service, a library channel) see an empty set and drain;
      // subscribers are told the same way a publication tells them.
      auto empty = std::make_shared<const EndpointSet>(key, next_version_++,
                                                       std::vector<Endpoint>{});
      it->second->current_.store(empty, std::memory_order_release);
      absent_.insert(key);
      for (const auto& [id, sub] : subscribers_) {
        if (!sub.key.has_value() || *sub.key == key) to_call.emplace_back(key, sub.callback, empty);
      }
    }
    PruneLocked();
  }
  for (const auto& [key, callback, published] : to_call) callback(key, published);
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
      // A removed key comes back (a Service re-created): even the same content is news, since
      // the key did not exist a moment ago.
      const bool was_absent = absent_.erase(key) > 0;
      if (!was_absent && current != nullptr && current->SameContent(*candidate)) {
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
    PruneLocked();
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
      if (absent_.count(k)) continue;
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
