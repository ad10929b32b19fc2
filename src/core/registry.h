// Registry: ServiceKey → the current immutable EndpointSet. Sources publish from their own
// threads; readers on the data path hold an EndpointSlot and Load() it without locks (an atomic
// shared_ptr swap, RCU style). Subscribers are called on the publishing thread, one at a time.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "core/endpoint.h"

namespace podlb {

// One key's current snapshot. Load() is wait-free for readers in practice and never blocks on
// a publisher; it returns nullptr until a source has published the key.
class EndpointSlot {
 public:
  EndpointSetConstSharedPtr Load() const { return current_.load(std::memory_order_acquire); }

 private:
  friend class Registry;
  std::atomic<EndpointSetConstSharedPtr> current_;
};
using EndpointSlotConstSharedPtr = std::shared_ptr<const EndpointSlot>;

// Called with the key that changed and its new snapshot.
using EndpointSetCallback =
    std::function<void(const ServiceKey& key, const EndpointSetConstSharedPtr& set)>;

class Registry;

// Unsubscribes when destroyed. Must not be destroyed from inside its own callback.
class Subscription {
 public:
  ~Subscription();
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

 private:
  friend class Registry;
  Subscription(Registry* registry, uint64_t id) : registry_(registry), id_(id) {}
  Registry* registry_;
  uint64_t id_;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Publishes `endpoints` under every key in `keys` (a service port is reachable by its name and
  // its number; all keys share one snapshot whose key() is keys[0]). A publication whose content
  // equals the current one is dropped: no version bump, no notification. Returns the snapshot
  // now current.
  EndpointSetConstSharedPtr Publish(const std::vector<ServiceKey>& keys,
                                    std::vector<Endpoint> endpoints,
                                    std::map<std::string, std::string> annotations = {});

  // The keys no longer exist (a deleted Service, a removed port): each key that has a snapshot
  // gets an empty one (subscribers and slot holders see "no endpoints", so they drain), and from
  // then on Current() and Keys() do not know the key, as if it had never been published. A later
  // Publish brings the key back, on the same slot if anyone still holds it.
  void Remove(const std::vector<ServiceKey>& keys);

  // The slot for `key`, created empty if nobody published it yet. Holding it keeps the key's
  // entry; once no holder is left, the entry of a key that does not exist (removed, or never
  // published) is dropped, so Services that come and go leave nothing behind.
  EndpointSlotConstSharedPtr Slot(const ServiceKey& key);
  // The key's snapshot; nullptr for a key never published or removed.
  EndpointSetConstSharedPtr Current(const ServiceKey& key);
  std::vector<ServiceKey> Keys() const;
  // Entries held: published keys plus slots of absent keys someone still holds (for /metrics
  // and the soak, which checks this returns to its baseline once deleted Services are gone).
  size_t SlotCount() const;

  // `callback` runs for every later publication of `key`, and at once with the current snapshot
  // if there is one.
  [[nodiscard]] std::unique_ptr<Subscription> Subscribe(const ServiceKey& key,
                                                        EndpointSetCallback callback);
  // Same, for every key.
  [[nodiscard]] std::unique_ptr<Subscription> SubscribeAll(EndpointSetCallback callback);

 private:
  friend class Subscription;
  struct Subscriber {
    std::optional<ServiceKey> key;  // nullopt: every key
    EndpointSetCallback callback;
  };
  std::shared_ptr<EndpointSlot> SlotLocked(const ServiceKey& key) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the entries of absent keys nobody holds. Cost: the number of absent keys held, which
  // is small (slots handed out for keys not yet published, or Services just deleted).
  void PruneLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::unique_ptr<Subscription> AddSubscriber(std::optional<ServiceKey> key,
                                              EndpointSetCallback callback);
  void Unsubscribe(uint64_t id);

  // Serializes publishers and subscriber callbacks, so a subscriber sees versions in order and a
  // destroyed Subscription is never called again. Readers of slots never take it.
  absl::Mutex notify_mu_;
  mutable absl::Mutex mu_ ABSL_ACQUIRED_AFTER(notify_mu_);
  // mutable: const readers (Keys, SlotCount) prune too; pruning changes no observable state.
  mutable std::map<ServiceKey, std::shared_ptr<EndpointSlot>> slots_ ABSL_GUARDED_BY(mu_);
  // Keys with a slot but no existence: removed, or handed out by Slot() before any publication.
  mutable std::set<ServiceKey> absent_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Subscriber> subscribers_ ABSL_GUARDED_BY(mu_);
  uint64_t next_subscriber_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_version_ ABSL_GUARDED_BY(mu_) = 1;
};

}  // namespace podlb
