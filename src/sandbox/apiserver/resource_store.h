// ResourceStore: the in-memory object store behind the API-server stand-in, with Kubernetes
// semantics: one global, monotonically increasing resourceVersion; list at a version; watch from
// a version with bounded history (older versions answer Gone, as etcd compaction does); label
// selectors; paged lists served as of an older version from that same history (every page of a
// chunked list sees one snapshot, as etcd serves it). Objects are Kubernetes JSON
// (nlohmann::json) exactly as the API server returns them.
// Thread-safe: the HTTP server, the controllers and the tests call it from their own threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "sandbox/apiserver/cluster_ip_allocator.h"

namespace podlb::sandbox {

// A resource type the stand-in serves, as discovery documents describe it.
struct ResourceType {
  std::string group;     // "" for core
  std::string version;   // "v1"
  std::string resource;  // plural, e.g. "endpointslices"
  std::string kind;      // "EndpointSlice"
  bool namespaced = true;
  std::vector<std::string> short_names;
  // Subresources served besides the object itself ("status", "scale", "log", "token").
  std::vector<std::string> subresources = {};
  // Verbs discovery lists; empty: every object verb (create … watch).
  std::vector<std::string> verbs = {};

  std::string ApiVersion() const { return group.empty() ? version : group + "/" + version; }
};

// The types served: what podlb reads (services, endpoints, endpointslices), what its manifests
// in deploy/ create (namespaces, serviceaccounts, configmaps, deployments, daemonsets, RBAC,
// poddisruptionbudgets), what kubectl describe/rollout/logs read (pods, nodes, events,
// replicasets, controllerrevisions), and the create-only reviews (selfsubjectaccessreviews).
const std::vector<ResourceType>& ServedResourceTypes();
const ResourceType* FindResourceType(const std::string& group, const std::string& resource);

// Equality-based and set-based label selectors as the API server parses them
// ("a=b,c!=d,e in (x,y),f notin (z),g,!h").
class LabelSelector {
 public:
  static absl::StatusOr<LabelSelector> Parse(const std::string& text);
  bool Matches(const nlohmann::json& labels) const;  // labels: the metadata.labels object or null
  bool Empty() const { return requirements_.empty(); }

 private:
  struct Requirement {
    std::string key;
    enum class Op { kIn, kNotIn, kExists, kNotExists } op;
    std::vector<std::string> values;
  };
  std::vector<Requirement> requirements_;
};

struct WatchEvent {
  std::string type;  // ADDED, MODIFIED, DELETED, BOOKMARK
  nlohmann::json object;
};

// A live watch. Events arrive in resourceVersion order; Next blocks up to `timeout`.
class Watcher {
 public:
  virtual ~Watcher() = default;
  // nullopt on timeout or after the store closed the watch.
  virtual std::optional<WatchEvent> Next(std::chrono::milliseconds timeout) = 0;
  // The resourceVersion this watcher has delivered up to (for bookmarks).
  virtual uint64_t DeliveredVersion() const = 0;
  // Ends the watch from any thread: a blocked Next wakes up and returns nullopt from then on
  // (the server calls it when the client hangs up or the server stops).
  virtual void Close() {}
};

// Error codes, mapped to HTTP by the server: NotFound → 404, AlreadyExists → 409 AlreadyExists,
// Aborted → 409 Conflict (stale resourceVersion on update), InvalidArgument → 422 Invalid (or
// 400 BadRequest for malformed input), OutOfRange → 410 Gone (expired resourceVersion).
class ResourceStore {
 public:
  explicit ResourceStore(size_t history_limit = 10000);
  // Services get their ClusterIPs from `service_cidr` (ParseServiceCidr) instead of kServiceCidr.
  ResourceStore(size_t history_limit, const ServiceCidr& service_cidr);
  ~ResourceStore();

  // `ns` is ignored for cluster-scoped types. Create assigns uid, resourceVersion,
  // creationTimestamp, and fills generateName; a Service gets its ClusterIP, which Update keeps
  // and Delete frees (cluster_ip_allocator.h).
  absl::StatusOr<nlohmann::json> Create(const std::string& resource, const std::string& ns,
                                        nlohmann::json object);
  // Replace. If the object carries metadata.resourceVersion it must match (else Aborted).
  absl::StatusOr<nlohmann::json> Update(const std::string& resource, const std::string& ns,
                                        nlohmann::json object);
  absl::StatusOr<nlohmann::json> Delete(const std::string& resource, const std::string& ns,
                                        const std::string& name);
  absl::StatusOr<nlohmann::json> Get(const std::string& resource, const std::string& ns,
                                     const std::string& name) const;

  struct ListResult {
    std::vector<nlohmann::json> items;
    uint64_t resource_version = 0;
  };
  // ns "" lists every namespace.
  ListResult List(const std::string& resource, const std::string& ns,
                  const LabelSelector& selector) const;

  // One page of a chunked list. Keys are "namespace/name" in byte order (etcd's order); `start`
  // and `last_key` are relative to the collection: "name" inside one namespace or for a
  // cluster-scoped type, "namespace/name" across all namespaces.
  struct PageRequest {
    std::string ns;  // "" : every namespace
    LabelSelector selector;
    // Further filter (field selectors); null: every object the label selector matches.
    std::function<bool(const nlohmann::json&)> filter;
    size_t limit = 0;      // 0: no limit
    std::string start;     // first relative key to consider (inclusive); "" from the beginning
    uint64_t version = 0;  // the snapshot to read; 0: the current version
  };
  struct Page {
    std::vector<nlohmann::json> items;
    uint64_t resource_version = 0;  // the snapshot read
    // More matching objects follow `last_key`, the relative key of the last item returned.
    bool more = false;
    std::string last_key;
    // Objects of the collection after the page, selectors ignored (remainingItemCount).
    size_t remaining = 0;
  };
  // OutOfRange when `version` is older than the retained history (compacted), InvalidArgument
  // when it is newer than the current version.
  absl::StatusOr<Page> ListPage(const std::string& resource, const PageRequest& request) const;

  // Events strictly after `from_version` (0: from now). OutOfRange if from_version is older than
  // the retained history.
  absl::StatusOr<std::unique_ptr<Watcher>> Watch(const std::string& resource,
                                                 const std::string& ns,
                                                 const LabelSelector& selector,
                                                 uint64_t from_version);

  uint64_t CurrentVersion() const;
  // Drops history up to the current version, so any older watch, and any continue token of a
  // list begun before, gets 410 (for tests of relist). Without it, history is bounded by
  // `history_limit` events: a version that many changes old is gone.
  void Compact();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace podlb::sandbox
