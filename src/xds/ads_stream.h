// AdsStream: one client's state-of-the-world ADS stream, independent of the transport carrying
// it (AdsConnection, src/xds/ads_connection.h). It keeps, per resource type, what the client
// subscribed to, what it was last sent, and what it ACKed; a request or a Registry change marks
// what is due, and the transport takes the next response only when it can write one, so changes
// that arrive while a response is in flight coalesce into the next (one response in flight per
// stream, as with gRPC's one outstanding write).
//
// Threads: everything but DebugJson runs on the event-loop thread of the connection carrying the
// stream (the service posts Registry changes there); DebugJson runs on the admin thread. State is
// under mu_, which therefore is only ever contended by /debug. Lock order: a stream's mu_ before
// the service's streams_mu_ (UpdateWatches), never the reverse.
//
// What a stream spends per push is kept to its own subscription: it re-reads only the names of
// the Services that changed, a response is assembled from the cache's shared encoded bytes (no
// per-stream copy or re-serialization of a resource), RDS and EDS responses carry only the
// resources that changed (xDS lets those types omit the rest), and the content version mixes
// per-resource hashes computed once in the cache.
#pragma once

#include <array>
#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "absl/status/status.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "nlohmann/json.hpp"
#include "xds/resource_cache.h"
#include "xds/client_profile.h"
#include "xds/type_urls.h"
#include "xds/xds_metrics.h"

namespace podlb::xds {

class AdsService;

// What the transport is told by a stream: a response may be due, or the stream should end.
// Loop thread only.
class AdsStreamSink {
 public:
  virtual ~AdsStreamSink() = default;
  virtual void OnResponseDue() = 0;
};

// One DiscoveryResponse as it goes on the wire: the encoded header fields (type URL, version,
// nonce, control plane) followed by the cache's shared `resources` field bytes, in order.
struct AdsResponse {
  std::string header;
  std::vector<EncodedResourceConstSharedPtr> resources;
  size_t size() const {
    size_t n = header.size();
    for (const auto& resource : resources) n += resource->response_field.size();
    return n;
  }
};

class AdsStream {
 public:
  AdsStream(AdsService* service, uint64_t id, std::string peer);

  uint64_t id() const { return id_; }
  // The transport attaches itself once the stream is registered, and detaches before it goes.
  void Attach(AdsStreamSink* sink) { sink_ = sink; }
  void Detach() { sink_ = nullptr; }

  // One DiscoveryRequest's bytes. InvalidArgument if they are not one: nothing later on the
  // stream can be trusted to parse either, so the transport ends the stream with that status.
  absl::Status OnRequest(std::string_view bytes);
  // Some Services changed; mark every affected type due. `changed_at` is when the first of the
  // changes reached the control plane (for the push-latency histogram).
  void OnServicesChanged(const std::set<ServiceKey>& keys, absl::Time changed_at);
  // The next response that is due, if any. The transport calls it when it can write.
  bool TakeResponse(AdsResponse* out);
  // The client went away (logged once, with what the stream knew of it).
  void OnClosed();
  nlohmann::json DebugJson() const;

 private:
  using ResourceMap = std::map<std::string, EncodedResourceConstSharedPtr>;
  struct TypeState {
    bool seen_request = false;
    bool wildcard = false;
    std::set<std::string> names;
    // The resource names of the last request as the client listed them: an ACK repeats them,
    // and one comparison then says the subscription did not change.
    std::vector<std::string> request_names;
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
  bool BuildResponseLocked(ResourceType type, TypeState& state, AdsResponse* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecomputeWatchedKeysLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  AdsService* const service_;
  const uint64_t id_;
  const std::string peer_;
  AdsStreamSink* sink_ = nullptr;  // loop thread only

  mutable absl::Mutex mu_;
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
};

}  // namespace podlb::xds
