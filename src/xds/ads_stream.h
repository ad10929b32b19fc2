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
// What a stream spends per push is kept to its own subscription and allocates nothing: a
// Registry change flags the subscriptions of the changed Services; a response re-reads only
// those from the cache, is assembled from the cache's shared encoded bytes (no per-stream copy
// or re-serialization of a resource) behind header fields encoded by hand, carries only the
// RDS and EDS resources that changed (xDS lets those types omit the rest), and its content
// version mixes per-resource hashes computed once in the cache. An ACK is parsed into a message
// its event loop reuses, and when it repeats the subscription (the common case) it costs a
// comparison of names. What a stream holds per subscribed name is a pointer to the name, shared
// by every stream that names it (ResourceNameTable), and the resources sent and ACKed.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "absl/time/time.h"
#include "absl/status/status.h"
#include "envoy/service/discovery/v3/discovery.pb.h"
#include "nlohmann/json.hpp"
#include "xds/resource_cache.h"
#include "xds/resource_names.h"
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

// One DiscoveryResponse as it goes on the wire: the encoded header fields (version, type URL,
// nonce, control plane) followed by the cache's shared `resources` field bytes, in order. The
// transport keeps one per call and hands it to every TakeResponse, so its buffers are reused.
struct AdsResponse {
  std::string header;
  std::vector<EncodedResourceConstSharedPtr> resources;
  size_t size() const {
    size_t n = header.size();
    for (const auto& resource : resources) n += resource->response_field.size();
    return n;
  }
};

// The header fields of a DiscoveryResponse (all but `resources`), encoded as protobuf would:
// a response is these bytes followed by the resources' shared field bytes.
void EncodeResponseHeader(std::string_view version, std::string_view type_url,
                          std::string_view nonce, std::string_view control_plane_id,
                          std::string* out);

class AdsStream {
 public:
  // `scratch` is a request message reused by every stream on the same event loop (its strings
  // keep their capacity from one parse to the next), owned by the service.
  AdsStream(AdsService* service, uint64_t id, std::string peer,
            envoy::service::discovery::v3::DiscoveryRequest* scratch);

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
  // One name a client subscribed to (or a wildcard covers), and what it holds of it.
  struct Subscription {
    ResourceNameConstSharedPtr name;
    EncodedResourceConstSharedPtr sent;   // what the client holds if it took every response
    EncodedResourceConstSharedPtr acked;  // what it holds by its last ACK
    bool listed = false;  // named in the client's request (not only covered by a wildcard)
    bool dirty = false;   // its Service changed since the last response
  };
  struct TypeState {
    bool seen_request = false;
    bool wildcard = false;
    bool dirty_all = false;  // re-read every name (a subscription change, or a wildcard's)
    bool dirty = false;      // some subscription is dirty
    bool force = false;      // send even if nothing changed (a new subscription)
    bool acked_any = false;
    std::optional<absl::Time> pending_since;
    std::vector<Subscription> subscriptions;  // by name, bytewise
    uint64_t sent_version = 0;
    uint64_t sent_nonce = 0;  // 0: nothing sent yet
    uint64_t acked_version = 0;
    uint64_t nacks = 0;
    std::string last_nack;
  };

  void HandleRequestLocked(const envoy::service::discovery::v3::DiscoveryRequest& request)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool BuildResponseLocked(ResourceType type, TypeState& state, AdsResponse* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A request whose names differ from the subscription: adopt the new list.
  void ResubscribeLocked(ResourceType type, TypeState& state,
                         absl::Span<const std::string_view> names, bool star)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A wildcard's due response: every name the cache has joins the subscription, unlisted.
  void CoverAllNamesLocked(ResourceType type, TypeState& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecomputeWatchedKeysLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  AdsService* const service_;
  const uint64_t id_;
  const std::string peer_;
  AdsStreamSink* sink_ = nullptr;  // loop thread only
  envoy::service::discovery::v3::DiscoveryRequest* const scratch_;  // loop thread only

  mutable absl::Mutex mu_;
  bool have_node_ ABSL_GUARDED_BY(mu_) = false;
  std::string node_id_ ABSL_GUARDED_BY(mu_);
  std::string user_agent_ ABSL_GUARDED_BY(mu_);
  ClientProfile profile_ ABSL_GUARDED_BY(mu_);
  std::array<TypeState, kResourceTypeCount> types_ ABSL_GUARDED_BY(mu_);
  bool any_wildcard_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t nonce_counter_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace podlb::xds
