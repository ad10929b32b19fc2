// AdsStream: one client's state-of-the-world ADS stream (a grpc++ callback reactor). It keeps,
// per resource type, what the client subscribed to, what it was last sent, and what it ACKed;
// answers subscription changes at once and pushes on Registry changes. gRPC threads call the
// On* reactions; the service's push thread calls OnServicesChanged. All state is under mu_, and
// no lock is held while calling into gRPC (StartWrite/Finish may run reactions inline). Lock
// order: a stream's mu_ before the service's streams_mu_ (UpdateWatches), never the reverse.
//
// What a stream spends per push is kept to its own subscription: it re-reads only the names of
// the Services that changed, a response is assembled from the cache's shared encoded bytes
// (raw ByteBuffer method: no per-stream copy or re-serialization of a resource), RDS and EDS
// responses carry only the resources that changed (xDS lets those types omit the rest), and
// the content version mixes per-resource hashes computed once in the cache.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "envoy/service/discovery/v3/ads.grpc.pb.h"
#include "nlohmann/json.hpp"
#include "xds/resource_cache.h"
#include "xds/client_profile.h"
#include "xds/type_urls.h"
#include "xds/xds_metrics.h"

namespace podlb::xds {

class AdsService;

class AdsStream : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  AdsStream(AdsService* service, uint64_t id, std::string peer);

  uint64_t id() const { return id_; }
  // Starts reading. Called once, by the service, right after registering the stream.
  void Begin();
  // Some Services changed; push every affected type. `changed_at` is when the first of the
  // changes reached the control plane (for the push-latency histogram).
  void OnServicesChanged(const std::set<ServiceKey>& keys, absl::Time changed_at);
  nlohmann::json DebugJson() const;

  void OnReadDone(bool ok) override;
  void OnWriteDone(bool ok) override;
  void OnDone() override;
  void OnCancel() override {}

 private:
  using ResourceMap = std::map<std::string, EncodedResourceConstSharedPtr>;
  struct TypeState {
    bool seen_request = false;
    bool wildcard = false;
    std::set<std::string> names;
    bool dirty_all = false;             // re-read every name (a subscription change)
    std::set<std::string> dirty_names;  // names whose Service changed since the last response
    bool force = false;  // send even if nothing changed (a new subscription)
    std::optional<absl::Time> pending_since;
    std::string sent_version;
    std::string sent_nonce;
    // What the client holds if it took everything sent (for RDS/EDS, the union of responses).
    // Shared and immutable, so an ACK is a pointer copy.
    std::shared_ptr<const ResourceMap> sent = std::make_shared<ResourceMap>();
    std::string acked_version;
    std::shared_ptr<const ResourceMap> acked = std::make_shared<ResourceMap>();
    uint64_t nacks = 0;
    std::string last_nack;
  };

  void HandleRequestLocked(const envoy::service::discovery::v3::DiscoveryRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool BuildNextResponseLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool BuildResponseLocked(ResourceType type, TypeState& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecomputeWatchedKeysLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts the next write if one is due, or Finish if the stream is closing.
  void Pump();

  AdsService* const service_;
  const uint64_t id_;
  const std::string peer_;
  grpc::ByteBuffer request_;  // owned by the outstanding read

  mutable absl::Mutex mu_;
  grpc::ByteBuffer response_ ABSL_GUARDED_BY(mu_);
  grpc::Status finish_status_ ABSL_GUARDED_BY(mu_);
  bool have_node_ ABSL_GUARDED_BY(mu_) = false;
  std::string node_id_ ABSL_GUARDED_BY(mu_);
  std::string user_agent_ ABSL_GUARDED_BY(mu_);
  ClientProfile profile_ ABSL_GUARDED_BY(mu_);
  std::array<TypeState, kResourceTypeCount> types_ ABSL_GUARDED_BY(mu_);
  // Service → the (type, name) subscriptions it backs.
  std::map<ServiceKey, std::vector<std::pair<ResourceType, std::string>>> watched_
      ABSL_GUARDED_BY(mu_);
  bool any_wildcard_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t nonce_counter_ ABSL_GUARDED_BY(mu_) = 0;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool read_closed_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace podlb::xds
