// ResourceStore: objects per resource plural keyed "namespace/name" (sorted, as etcd keys are),
// one global resourceVersion counter, and a bounded history of events that new watches replay
// from. Watchers own a queue the writers fill under the store lock; Next waits on one condition
// variable, so no thread ever polls. A list at an older version is the current objects with the
// history after that version undone: each event keeps the object as it was before it.
//
// Locks: the store's mutex guards the objects, the version and the history; each watcher's queue
// has its own, taken after the store's (writers offer events to every watcher under both) and
// alone by Next, which waits on it.
#include "sandbox/apiserver/resource_store.h"

#include <algorithm>
#include <ctime>
#include <deque>
#include <random>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "fmt/format.h"
#include "sandbox/apiserver/cluster_ip_allocator.h"
#include "sandbox/apiserver/object_defaults.h"
#include "sandbox/apiserver/object_validation.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

// The served type with this plural name (plurals are unique across the served groups), or null.
const ResourceType* TypeByPlural(const std::string& resource) {
  for (const auto& type : ServedResourceTypes()) {
    if (type.resource == resource) return &type;
  }
  return nullptr;
}

std::string GroupResource(const std::string& resource) {
  for (const auto& type : ServedResourceTypes()) {
    if (type.resource == resource && !type.group.empty()) return resource + "." + type.group;
  }
  return resource;
}

std::string NowRfc3339() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// DNS-1123 subdomain, as the server validates metadata.name for these types.
bool ValidName(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.')) return false;
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  return alnum(name.front()) && alnum(name.back());
}

std::string StringAt(const json& object, const char* field) {
  if (!object.is_object()) return "";
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "";
  auto it = meta->find(field);
  return it != meta->end() && it->is_string() ? it->get<std::string>() : "";
}

const json& Labels(const json& object) {
  static const json* const kNull = new json(nullptr);
  if (!object.is_object()) return *kNull;
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return *kNull;
  auto it = meta->find("labels");
  return it == meta->end() ? *kNull : *it;
}

// The object without the fields the server manages, to detect no-op updates.
json Comparable(json object) {
  if (object.contains("metadata") && object["metadata"].is_object()) {
    object["metadata"].erase("resourceVersion");
    object["metadata"].erase("managedFields");
  }
  return object;
}

struct HistoryEvent {
  uint64_t version;
  std::string resource;
  std::string type;  // ADDED, MODIFIED, DELETED
  json previous;     // the object before the event; null for ADDED
  json object;
};

// Where the store files an object: "namespace/name", "/name" for a cluster-scoped type.
std::string KeyOf(const json& object) {
  return StringAt(object, "namespace") + "/" + StringAt(object, "name");
}

// The key prefix of a collection: one namespace, every namespace (""), or cluster-scoped ("/").
std::string CollectionPrefix(const std::string& resource, const std::string& ns) {
  const ResourceType* type = TypeByPlural(resource);
  if (type != nullptr && !type->namespaced) return "/";
  return ns.empty() ? "" : ns + "/";
}

struct WatcherState {
  WatcherState(std::string resource, std::string ns, LabelSelector selector)
      : resource(std::move(resource)), ns(std::move(ns)), selector(std::move(selector)) {}

  const std::string resource;
  const std::string ns;
  const LabelSelector selector;
  // Taken after the store's mutex when both are held.
  absl::Mutex mu;
  std::deque<std::pair<uint64_t, WatchEvent>> queue ABSL_GUARDED_BY(mu);
  uint64_t delivered ABSL_GUARDED_BY(mu) = 0;
  bool closed ABSL_GUARDED_BY(mu) = false;

  // What this watcher sees of `event`, if anything: a change that moves an object into or out
  // of the selector arrives as ADDED or DELETED, as the real server's watch cache does it.
  void OfferLocked(const HistoryEvent& event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (closed || event.resource != resource) return;
    if (!ns.empty() && StringAt(event.object, "namespace") != ns) return;
    bool now = selector.Matches(Labels(event.object));
    std::string type = event.type;
    if (event.type == "MODIFIED") {
      bool before = selector.Matches(Labels(event.previous));
      if (!before && !now) return;
      if (!before) type = "ADDED";
      if (!now) type = "DELETED";
    } else if (!now) {
      return;
    }
    queue.emplace_back(event.version, WatchEvent{type, event.object});
  }
};

struct StoreCore {
  StoreCore(size_t limit, const ServiceCidr& service_cidr)
      : history_limit(std::max<size_t>(limit, 1)),
        rng(std::random_device{}()),
        cluster_ips(service_cidr) {}

  absl::Mutex mu;
  const size_t history_limit;
  // Starts at 1 so that no real object ever carries resourceVersion "0", which clients use to
  // mean "any version".
  uint64_t version ABSL_GUARDED_BY(mu) = 1;
  // Events after `compacted` are all in `history`; watching from an older version is Gone.
  uint64_t compacted ABSL_GUARDED_BY(mu) = 0;
  std::deque<HistoryEvent> history ABSL_GUARDED_BY(mu);
  // resource → "ns/name" → object
  std::map<std::string, std::map<std::string, json>> objects ABSL_GUARDED_BY(mu);
  std::vector<std::shared_ptr<WatcherState>> watchers ABSL_GUARDED_BY(mu);
  std::mt19937_64 rng ABSL_GUARDED_BY(mu);
  // The Services' ClusterIPs, allocated and freed with the writes that record them.
  ClusterIpAllocator cluster_ips ABSL_GUARDED_BY(mu);

  std::string NewUidLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    uint64_t a = rng(), b = rng();
    a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
    b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
    return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff,
                       a & 0xffff, b >> 48, b & 0xffffffffffffULL);
  }

  std::string RandomSuffixLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
    std::string s;
    for (int i = 0; i < 5; ++i) s.push_back(kAlphabet[rng() % (sizeof kAlphabet - 1)]);
    return s;
  }

  void RecordLocked(HistoryEvent event) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    for (auto& w : watchers) {
      absl::MutexLock lock(&w->mu);
      w->OfferLocked(event);
    }
    history.push_back(std::move(event));
    while (history.size() > history_limit) {
      compacted = history.front().version;
      history.pop_front();
    }
  }
};

class WatcherImpl : public Watcher {
 public:
  WatcherImpl(std::shared_ptr<StoreCore> store, std::shared_ptr<WatcherState> state)
      : store_(std::move(store)), state_(std::move(state)) {}
  ~WatcherImpl() override {
    absl::MutexLock lock(&store_->mu);
    auto& list = store_->watchers;
    list.erase(std::remove(list.begin(), list.end(), state_), list.end());
  }

  std::optional<WatchEvent> Next(std::chrono::milliseconds timeout) override {
    absl::MutexLock lock(&state_->mu);
    auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
      return state_->closed || !state_->queue.empty();
    };
    state_->mu.AwaitWithTimeout(absl::Condition(&ready), absl::FromChrono(timeout));
    if (state_->closed || state_->queue.empty()) return std::nullopt;
    auto [version, event] = std::move(state_->queue.front());
    state_->queue.pop_front();
    state_->delivered = version;
    return std::move(event);
  }

  uint64_t DeliveredVersion() const override {
    absl::MutexLock store_lock(&store_->mu);
    absl::MutexLock lock(&state_->mu);
    // With nothing queued, every event up to the current version has been offered to (and
    // filtered by) this watcher, so it is caught up to the store.
    if (state_->queue.empty()) return std::max(state_->delivered, store_->version);
    return state_->delivered;
  }

  void Close() override {
    absl::MutexLock lock(&state_->mu);
    state_->closed = true;
  }

 private:
  std::shared_ptr<StoreCore> store_;
  std::shared_ptr<WatcherState> state_;
};

}  // namespace

struct ResourceStore::Impl {
  // Shared with every live Watcher, so a watch that outlives the store stays safe.
  std::shared_ptr<StoreCore> core;
};

ResourceStore::ResourceStore(size_t history_limit)
    : ResourceStore(history_limit, *ParseServiceCidr(kServiceCidr)) {}

ResourceStore::ResourceStore(size_t history_limit, const ServiceCidr& service_cidr)
    : impl_(std::make_unique<Impl>(
          Impl{std::make_shared<StoreCore>(history_limit, service_cidr)})) {}

ResourceStore::~ResourceStore() {
  absl::MutexLock store_lock(&impl_->core->mu);
  for (auto& w : impl_->core->watchers) {
    absl::MutexLock lock(&w->mu);
    w->closed = true;
  }
}

absl::StatusOr<json> ResourceStore::Create(const std::string& resource, const std::string& ns,
                                           json object) {
  const ResourceType* type = TypeByPlural(resource);
  if (type == nullptr) {
    return absl::NotFoundError("the server could not find the requested resource \"" + resource +
                               "\"");
  }
  if (!object.is_object()) {
    return absl::InvalidArgumentError(type->kind + " is invalid: the body must be a JSON object");
  }
  if (!object.contains("metadata") || !object["metadata"].is_object())
    object["metadata"] = json::object();
  json& meta = object["metadata"];
  std::string namespace_name = type->namespaced ? ns : "";
  if (type->namespaced) {
    std::string given = StringAt(object, "namespace");
    if (namespace_name.empty()) namespace_name = given.empty() ? "default" : given;
    if (!given.empty() && given != namespace_name) {
      return absl::InvalidArgumentError(
          "the namespace of the provided object does not match the namespace sent on the request");
    }
    meta["namespace"] = namespace_name;
  } else {
    meta.erase("namespace");
  }
  absl::MutexLock lock(&impl_->core->mu);
  auto& objects = impl_->core->objects[resource];
  std::string name = StringAt(object, "name");
  if (name.empty()) {
    std::string prefix = StringAt(object, "generateName");
    if (prefix.empty()) {
      return absl::InvalidArgumentError(type->kind +
                                        " \"\" is invalid: metadata.name: Required value: name or "
                                        "generateName is required");
    }
    do {
      name = prefix + impl_->core->RandomSuffixLocked();
    } while (objects.count(namespace_name + "/" + name) > 0);
  }
  if (!ValidName(name)) {
    return absl::InvalidArgumentError(
        fmt::format("{} \"{}\" is invalid: metadata.name: Invalid value: \"{}\": a lowercase "
                    "RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
                    "or '.', and must start and end with an alphanumeric character",
                    type->kind, name, name));
  }
  if (auto causes = ValidateObject(*type, object); !causes.empty()) {
    return InvalidObjectError(*type, name, causes);
  }
  std::string key = namespace_name + "/" + name;
  if (objects.count(key) > 0) {
    return absl::AlreadyExistsError(
        fmt::format("{} \"{}\" already exists", GroupResource(resource), name));
  }
  // Last of the checks: nothing after it fails, so an address allocated is always recorded.
  if (resource == "services") {
    if (absl::Status allocated = impl_->core->cluster_ips.Allocate(name, object); !allocated.ok()) {
      return allocated;
    }
  }
  uint64_t version = ++impl_->core->version;
  object["kind"] = type->kind;
  object["apiVersion"] = type->ApiVersion();
  meta["name"] = name;
  meta["uid"] = impl_->core->NewUidLocked();
  meta["resourceVersion"] = std::to_string(version);
  meta["creationTimestamp"] = NowRfc3339();
  DefaultOnCreate(*type, object);
  if (object.contains("spec")) meta["generation"] = 1;
  meta.erase("deletionTimestamp");
  objects[key] = object;
  impl_->core->RecordLocked({version, resource, "ADDED", nullptr, object});
  return object;
}

absl::StatusOr<json> ResourceStore::Update(const std::string& resource, const std::string& ns,
                                           json object) {
  const ResourceType* type = TypeByPlural(resource);
  if (type == nullptr) {
    return absl::NotFoundError("the server could not find the requested resource \"" + resource +
                               "\"");
  }
  if (!object.is_object()) {
    return absl::InvalidArgumentError(type->kind + " is invalid: the body must be a JSON object");
  }
  std::string name = StringAt(object, "name");
  if (name.empty()) {
    return absl::InvalidArgumentError(
        type->kind + " \"\" is invalid: metadata.name: Required value: name is required");
  }
  if (auto causes = ValidateObject(*type, object); !causes.empty()) {
    return InvalidObjectError(*type, name, causes);
  }
  std::string namespace_name =
      type->namespaced ? (ns.empty() ? StringAt(object, "namespace") : ns) : "";
  if (type->namespaced && namespace_name.empty()) namespace_name = "default";
  std::string given_ns = StringAt(object, "namespace");
  if (type->namespaced && !given_ns.empty() && given_ns != namespace_name) {
    return absl::InvalidArgumentError(
        "the namespace of the provided object does not match the namespace sent on the request");
  }
  absl::MutexLock lock(&impl_->core->mu);
  auto& objects = impl_->core->objects[resource];
  auto it = objects.find(namespace_name + "/" + name);
  if (it == objects.end()) {
    return absl::NotFoundError(fmt::format("{} \"{}\" not found", GroupResource(resource), name));
  }
  json& current = it->second;
  std::string given_rv = StringAt(object, "resourceVersion");
  if (!given_rv.empty() && given_rv != StringAt(current, "resourceVersion")) {
    return absl::AbortedError(
        fmt::format("Operation cannot be fulfilled on {} \"{}\": the object has been modified; "
                    "please apply your changes to the latest version and try again",
                    GroupResource(resource), name));
  }
  if (auto causes = ValidateUpdate(*type, current, object); !causes.empty()) {
    return InvalidObjectError(*type, name, causes);
  }
  if (resource == "services") {
    if (absl::Status kept = impl_->core->cluster_ips.CarryOver(name, current, object); !kept.ok()) {
      return kept;
    }
  }
  json& meta = object["metadata"];
  if (type->namespaced) meta["namespace"] = namespace_name;
  object["kind"] = type->kind;
  object["apiVersion"] = type->ApiVersion();
  meta["uid"] = current["metadata"]["uid"];
  meta["creationTimestamp"] = current["metadata"]["creationTimestamp"];
  if (current["metadata"].contains("generation")) {
    int64_t generation = current["metadata"].value("generation", int64_t{1});
    bool spec_changed = object.value("spec", json()) != current.value("spec", json());
    meta["generation"] = spec_changed ? generation + 1 : generation;
  }
  meta["resourceVersion"] = current["metadata"]["resourceVersion"];
  // An update that changes nothing keeps the resourceVersion and emits no event.
  if (Comparable(object) == Comparable(current)) return current;
  uint64_t version = ++impl_->core->version;
  meta["resourceVersion"] = std::to_string(version);
  json previous = std::move(current);
  current = object;
  impl_->core->RecordLocked({version, resource, "MODIFIED", std::move(previous), object});
  return object;
}

absl::StatusOr<json> ResourceStore::Delete(const std::string& resource, const std::string& ns,
                                           const std::string& name) {
  const ResourceType* type = TypeByPlural(resource);
  std::string namespace_name = type != nullptr && type->namespaced ? ns : "";
  absl::MutexLock lock(&impl_->core->mu);
  auto& objects = impl_->core->objects[resource];
  auto it = objects.find(namespace_name + "/" + name);
  if (it == objects.end()) {
    return absl::NotFoundError(fmt::format("{} \"{}\" not found", GroupResource(resource), name));
  }
  json object = std::move(it->second);
  objects.erase(it);
  if (resource == "services") impl_->core->cluster_ips.Release(object);
  uint64_t version = ++impl_->core->version;
  json previous = object;
  // The DELETED event carries the final object at the deletion's revision, as etcd reports it.
  object["metadata"]["resourceVersion"] = std::to_string(version);
  impl_->core->RecordLocked({version, resource, "DELETED", std::move(previous), object});
  return object;
}

absl::StatusOr<json> ResourceStore::Get(const std::string& resource, const std::string& ns,
                                        const std::string& name) const {
  const ResourceType* type = TypeByPlural(resource);
  std::string namespace_name = type != nullptr && type->namespaced ? ns : "";
  absl::MutexLock lock(&impl_->core->mu);
  auto objects = impl_->core->objects.find(resource);
  if (objects != impl_->core->objects.end()) {
    auto it = objects->second.find(namespace_name + "/" + name);
    if (it != objects->second.end()) return it->second;
  }
  return absl::NotFoundError(fmt::format("{} \"{}\" not found", GroupResource(resource), name));
}

ResourceStore::ListResult ResourceStore::List(const std::string& resource, const std::string& ns,
                                              const LabelSelector& selector) const {
  ListResult result;
  absl::MutexLock lock(&impl_->core->mu);
  result.resource_version = impl_->core->version;
  auto objects = impl_->core->objects.find(resource);
  if (objects == impl_->core->objects.end()) return result;
  for (const auto& [key, object] : objects->second) {
    if (!ns.empty() && key.compare(0, ns.size() + 1, ns + "/") != 0 && !key.starts_with("/"))
      continue;
    if (!selector.Matches(Labels(object))) continue;
    result.items.push_back(object);
  }
  return result;
}

absl::StatusOr<ResourceStore::Page> ResourceStore::ListPage(const std::string& resource,
                                                            const PageRequest& request) const {
  StoreCore& core = *impl_->core;
  const std::string prefix = CollectionPrefix(resource, request.ns);
  const std::string first = prefix + request.start;
  absl::MutexLock lock(&core.mu);
  Page page;
  page.resource_version = request.version == 0 ? core.version : request.version;
  const uint64_t at = page.resource_version;
  if (at > core.version) {
    return absl::InvalidArgumentError(
        fmt::format("resource version {} is newer than the current version {}", at, core.version));
  }
  if (at < core.compacted) {
    uint64_t oldest = core.history.empty() ? core.version : core.history.front().version;
    return absl::OutOfRangeError(fmt::format("too old resource version: {} ({})", at, oldest));
  }
  // The objects as of `at`: for every key changed since, its state before the first change
  // (null: it did not exist yet). History holds every event after `compacted`, so this is exact.
  std::map<std::string, const json*> undo;
  auto from = std::upper_bound(core.history.begin(), core.history.end(), at,
                               [](uint64_t v, const HistoryEvent& e) { return v < e.version; });
  for (auto e = from; e != core.history.end(); ++e) {
    if (e->resource != resource) continue;
    std::string key = KeyOf(e->type == "ADDED" ? e->object : e->previous);
    if (key.compare(0, prefix.size(), prefix) != 0 || key < first) continue;
    undo.emplace(std::move(key), e->type == "ADDED" ? nullptr : &e->previous);
  }
  static const std::map<std::string, json> kNone;
  auto objects_it = core.objects.find(resource);
  const auto& objects = objects_it == core.objects.end() ? kNone : objects_it->second;

  auto in_collection = [&](const std::string& key) {
    return key.compare(0, prefix.size(), prefix) == 0;
  };
  auto matches = [&](const json& object) {
    return request.selector.Matches(Labels(object)) && (!request.filter || request.filter(object));
  };
  auto current = objects.lower_bound(first);
  auto changed = undo.lower_bound(first);
  bool full = false;
  while (true) {
    bool have_current = current != objects.end() && in_collection(current->first);
    bool have_changed = changed != undo.end();
    if (!have_current && !have_changed) break;
    const std::string* key;
    const json* object;
    if (have_current && (!have_changed || current->first < changed->first)) {
      key = &current->first;
      object = &current->second;
      ++current;
    } else {
      if (have_current && current->first == changed->first) ++current;
      key = &changed->first;
      object = changed->second;
      ++changed;
    }
    if (object == nullptr) continue;  // created after `at`
    if (full) ++page.remaining;
    if (!matches(*object)) continue;
    if (full) {
      page.more = true;
      continue;
    }
    page.items.push_back(*object);
    page.last_key = key->substr(prefix.size());
    full = request.limit > 0 && page.items.size() >= request.limit;
  }
  if (!page.more) {
    page.last_key.clear();
    page.remaining = 0;
  }
  return page;
}

absl::StatusOr<std::unique_ptr<Watcher>> ResourceStore::Watch(const std::string& resource,
                                                              const std::string& ns,
                                                              const LabelSelector& selector,
                                                              uint64_t from_version) {
  const ResourceType* type = TypeByPlural(resource);
  auto state = std::make_shared<WatcherState>(
      resource, type != nullptr && type->namespaced ? ns : "", selector);
  absl::MutexLock store_lock(&impl_->core->mu);
  if (from_version == 0) from_version = impl_->core->version;
  if (from_version < impl_->core->compacted) {
    uint64_t oldest =
        impl_->core->history.empty() ? impl_->core->version : impl_->core->history.front().version;
    return absl::OutOfRangeError(
        fmt::format("too old resource version: {} ({})", from_version, oldest));
  }
  {
    absl::MutexLock lock(&state->mu);
    for (const auto& event : impl_->core->history) {
      if (event.version > from_version) state->OfferLocked(event);
    }
    state->delivered = from_version;
  }
  impl_->core->watchers.push_back(state);
  return std::unique_ptr<Watcher>(new WatcherImpl(impl_->core, state));
}

uint64_t ResourceStore::CurrentVersion() const {
  absl::MutexLock lock(&impl_->core->mu);
  return impl_->core->version;
}

void ResourceStore::Compact() {
  absl::MutexLock lock(&impl_->core->mu);
  impl_->core->history.clear();
  impl_->core->compacted = impl_->core->version;
}

}  // namespace podlb::sandbox
