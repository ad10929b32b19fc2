#include "xds/ads_stream.h"

#include <algorithm>

#include "absl/cleanup/cleanup.h"
#include "absl/container/inlined_vector.h"
#include "absl/strings/str_cat.h"
#include "core/logging.h"
#include "google/protobuf/util/json_util.h"
#include "xds/ads_service.h"
#include "xds/wire_format.h"

namespace podlb::xds {

using envoy::service::discovery::v3::DiscoveryRequest;

void EncodeResponseHeader(std::string_view version, std::string_view type_url,
                          std::string_view nonce, std::string_view control_plane_id,
                          std::string* out) {
  // DiscoveryResponse: version_info = 1, type_url = 4, nonce = 5, control_plane = 6
  // (ControlPlane.identifier = 1), in field order as protobuf writes them; proto3 leaves empty
  // strings out.
  if (!version.empty()) AppendLengthDelimitedField(1, version, out);
  if (!type_url.empty()) AppendLengthDelimitedField(4, type_url, out);
  if (!nonce.empty()) AppendLengthDelimitedField(5, nonce, out);
  if (!control_plane_id.empty()) {
    AppendLengthDelimitedHeader(6, LengthDelimitedFieldSize(1, control_plane_id.size()), out);
    AppendLengthDelimitedField(1, control_plane_id, out);
  }
}

AdsStream::AdsStream(AdsService* service, uint64_t id, std::string peer, DiscoveryRequest* scratch)
    : service_(service), id_(id), peer_(std::move(peer)), scratch_(scratch) {}

absl::Status AdsStream::OnRequest(std::string_view bytes) {
  DiscoveryRequest& request = *scratch_;
  if (!request.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    absl::MutexLock lock(&mu_);
    LogWarn("xds: client {} ({}) sent a message that is not a DiscoveryRequest ({} bytes); "
            "closing its stream",
            node_id_, peer_, bytes.size());
    return absl::InvalidArgumentError("podlb: the request is not a valid DiscoveryRequest");
  }
  {
    absl::MutexLock lock(&mu_);
    HandleRequestLocked(request);
  }
  if (sink_ != nullptr) sink_->OnResponseDue();
  return absl::OkStatus();
}

void AdsStream::OnClosed() {
  absl::MutexLock lock(&mu_);
  // A stream that never said who it is (reset at once, or not an xDS client) is not news.
  if (have_node_) {
    LogInfo("xds: client {} ({}, {}) disconnected", node_id_, user_agent_, peer_);
  } else {
    LogDebug("xds: a stream from {} ended before it named its node", peer_);
  }
}

bool AdsStream::TakeResponse(AdsResponse* out) {
  absl::MutexLock lock(&mu_);
  for (ResourceType type : kAllResourceTypes) {
    TypeState& state = types_[static_cast<size_t>(type)];
    if (!state.dirty_all && !state.dirty) continue;
    bool send = BuildResponseLocked(type, state, out);
    state.dirty_all = false;
    state.dirty = false;
    state.force = false;
    state.pending_since.reset();
    if (send) return true;
  }
  return false;
}

void AdsStream::OnServicesChanged(const std::set<ServiceKey>& keys, absl::Time changed_at) {
  {
    absl::MutexLock lock(&mu_);
    bool affected = false;
    for (TypeState& state : types_) {
      bool marked = false;
      if (state.seen_request && state.wildcard) {
        // A wildcard subscription covers Services nobody named: re-read the whole type.
        state.dirty_all = true;
        marked = true;
      }
      for (Subscription& subscription : state.subscriptions) {
        const std::optional<ServiceKey>& key = subscription.name->key;
        if (!key || !keys.count(*key)) continue;
        subscription.dirty = true;
        state.dirty = true;
        marked = true;
      }
      if (!marked) continue;
      affected = true;
      if (!state.pending_since || changed_at < *state.pending_since) state.pending_since = changed_at;
    }
    if (!affected) return;
  }
  if (sink_ != nullptr) sink_->OnResponseDue();
}

void AdsStream::HandleRequestLocked(const DiscoveryRequest& request) {
  if (!have_node_ && request.has_node()) {
    // The node identity is sent on the first request only (later ones may omit it).
    have_node_ = true;
    const auto& node = request.node();
    node_id_ = node.id();
    user_agent_ = absl::StrCat(node.user_agent_name(), " ", node.user_agent_version());
    profile_ = ProfileFromNode(node);
    LogInfo("xds: client {} connected from {} ({}, zone \"{}\")", node_id_, peer_, user_agent_,
            profile_.zone);
    if (!profile_.note.empty()) LogWarn("xds: client {}: {}", node_id_, profile_.note);
  }
  ResourceType type;
  if (!ParseTypeUrl(request.type_url(), &type)) {
    LogWarn("xds: client {} asked for type {}, which podlb does not serve; ignoring", node_id_,
            request.type_url());
    return;
  }
  TypeState& state = types_[static_cast<size_t>(type)];

  if (state.sent_nonce != 0 && request.response_nonce() == absl::AlphaNum(state.sent_nonce).Piece()) {
    if (request.has_error_detail()) {
      ++state.nacks;
      state.last_nack = request.error_detail().message();
      service_->metrics_.nacks_total.fetch_add(1, std::memory_order_relaxed);
      // The client keeps what it accepted before; resending the same bytes would be rejected
      // again, so nothing is resent until the resources change.
      LogWarn("xds: client {} rejected {} version {} (keeps version \"{}\"): {}", node_id_,
              ShortName(type), ContentVersion::Format(state.sent_version),
              state.acked_any ? ContentVersion::Format(state.acked_version) : "",
              request.error_detail().message());
    } else {
      state.acked_version = state.sent_version;
      state.acked_any = true;
      for (Subscription& subscription : state.subscriptions) subscription.acked = subscription.sent;
      service_->metrics_.acks_total.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // A request with a stale nonce still carries the client's current subscription list, which is
  // the truth we serve from; only its ACK/NACK meaning is void.

  // The names as a sorted set of views into the request (no copies; the request is scratch).
  absl::InlinedVector<std::string_view, 16> names(request.resource_names().begin(),
                                                  request.resource_names().end());
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  bool star = false;
  if (auto it = std::lower_bound(names.begin(), names.end(), "*"); it != names.end() && *it == "*") {
    names.erase(it);
    star = true;
  }
  // Most requests are ACKs that repeat the subscription: nothing else to do.
  if (state.seen_request && (!star || state.wildcard)) {
    auto listed = state.subscriptions.begin();
    auto name = names.begin();
    for (;; ++listed, ++name) {
      while (listed != state.subscriptions.end() && !listed->listed) ++listed;
      if (listed == state.subscriptions.end() || name == names.end()) break;
      if (listed->name->text != *name) break;
    }
    if (listed == state.subscriptions.end() && name == names.end()) return;
  }
  ResubscribeLocked(type, state, names, star);
}

void AdsStream::ResubscribeLocked(ResourceType type, TypeState& state,
                                  absl::Span<const std::string_view> names, bool star) {
  const bool was_wildcard = state.wildcard;
  if (!state.seen_request) {
    // An empty first request for a full-state type is a wildcard subscription. Later empty
    // requests mean "unsubscribed from everything" (gRPC clients send that when idle).
    state.wildcard = IsFullStateType(type) && names.empty() && !star;
  }
  if (star) state.wildcard = true;
  bool added = !state.seen_request;
  bool listing_changed = !state.seen_request;
  // Merge the sorted old subscriptions with the sorted new names. A name kept keeps what it was
  // sent; a name dropped (and not covered by a wildcard) is forgotten, so it is re-sent in full
  // when the client subscribes to it again.
  std::vector<Subscription> merged;
  merged.reserve(names.size());
  auto old = state.subscriptions.begin();
  for (std::string_view name : names) {
    for (; old != state.subscriptions.end() && old->name->text < name; ++old) {
      listing_changed = listing_changed || old->listed;
      if (state.wildcard) {
        old->listed = false;
        merged.push_back(std::move(*old));
      }
    }
    if (old != state.subscriptions.end() && old->name->text == name) {
      if (!old->listed) added = listing_changed = true;  // was only covered by the wildcard
      old->listed = true;
      merged.push_back(std::move(*old));
      ++old;
    } else {
      added = listing_changed = true;
      Subscription subscription;
      subscription.name = service_->names_->Intern(name);
      subscription.listed = true;
      merged.push_back(std::move(subscription));
    }
  }
  for (; old != state.subscriptions.end(); ++old) {
    listing_changed = listing_changed || old->listed;
    if (state.wildcard) {
      old->listed = false;
      merged.push_back(std::move(*old));
    }
  }
  state.subscriptions = std::move(merged);
  state.seen_request = true;
  if (added) {
    state.dirty_all = true;
    state.force = true;
  }
  // Only a different subscription touches the watch index (a lock shared by every stream).
  if (listing_changed || state.wildcard != was_wildcard) RecomputeWatchedKeysLocked();
}

void AdsStream::RecomputeWatchedKeysLocked() {
  any_wildcard_ = false;
  std::set<ServiceKey> keys;
  for (const TypeState& state : types_) {
    any_wildcard_ = any_wildcard_ || state.wildcard;
    for (const Subscription& subscription : state.subscriptions) {
      if (subscription.listed && subscription.name->key) keys.insert(*subscription.name->key);
    }
  }
  service_->UpdateWatches(id_, std::move(keys), any_wildcard_);
}

void AdsStream::CoverAllNamesLocked(ResourceType type, TypeState& state) {
  std::vector<std::string> all = service_->cache_.AllNames(type);
  std::sort(all.begin(), all.end());
  std::vector<Subscription> merged;
  merged.reserve(std::max(all.size(), state.subscriptions.size()));
  auto old = state.subscriptions.begin();
  for (const std::string& name : all) {
    for (; old != state.subscriptions.end() && old->name->text < name; ++old) {
      merged.push_back(std::move(*old));
    }
    if (old != state.subscriptions.end() && old->name->text == name) {
      merged.push_back(std::move(*old));
      ++old;
    } else {
      Subscription subscription;
      subscription.name = service_->names_->Intern(name);
      merged.push_back(std::move(subscription));
    }
  }
  for (; old != state.subscriptions.end(); ++old) merged.push_back(std::move(*old));
  state.subscriptions = std::move(merged);
}

bool AdsStream::BuildResponseLocked(ResourceType type, TypeState& state, AdsResponse* out) {
  ResourceCache& cache = service_->cache_;
  if (state.dirty_all && state.wildcard) CoverAllNamesLocked(type, state);
  // Re-read what changed (everything, on a subscription change), noting what differs from what
  // the client was sent.
  absl::InlinedVector<uint32_t, 16> changed;
  bool removed = false;
  bool vanished_unlisted = false;
  for (uint32_t i = 0; i < state.subscriptions.size(); ++i) {
    Subscription& subscription = state.subscriptions[i];
    if (!state.dirty_all && !subscription.dirty) continue;
    subscription.dirty = false;
    // Only the names the client listed are read on a change of theirs; a wildcard's others
    // are read with the whole type (dirty_all).
    if (!state.dirty_all && !subscription.listed) continue;
    const ResourceName& name = *subscription.name;
    EncodedResourceConstSharedPtr now =
        name.key ? cache.Get(type, name.text, *name.key, profile_) : nullptr;
    if (now == nullptr) {
      removed = removed || subscription.sent != nullptr;
      vanished_unlisted = vanished_unlisted || !subscription.listed;
      subscription.sent = nullptr;
      continue;
    }
    if (!EncodedResource::SameContent(subscription.sent, now)) changed.push_back(i);
    subscription.sent = std::move(now);
  }
  // Whatever is sent: a name only a wildcard covered, whose resource is gone, is held no more
  // (after the response is assembled, which reads the subscriptions by index).
  absl::Cleanup drop_vanished = [&] {
    if (!vanished_unlisted) return;
    std::erase_if(state.subscriptions, [](const Subscription& subscription) {
      return !subscription.listed && subscription.sent == nullptr;
    });
  };
  if (changed.empty() && !removed && !state.force) return false;
  // LDS and CDS responses carry the whole subscription (a missing name means deleted). RDS and
  // EDS carry only what changed: a client keeps the resources a response leaves out, so sending
  // every watched endpoint set again would multiply the bytes per change by the subscription.
  out->resources.clear();
  if (IsFullStateType(type) || state.force) {
    for (const Subscription& subscription : state.subscriptions) {
      if (subscription.sent) out->resources.push_back(subscription.sent);
    }
  } else {
    for (uint32_t i : changed) out->resources.push_back(state.subscriptions[i].sent);
  }
  // RDS and EDS responses carry what exists; an empty one tells the client nothing.
  if (out->resources.empty() && !IsFullStateType(type)) return false;

  ContentVersion version;
  for (const Subscription& subscription : state.subscriptions) {
    if (subscription.sent) version.Add(subscription.name->text, *subscription.sent);
  }
  const uint64_t nonce = ++nonce_counter_;
  out->header.clear();
  // AlphaNum formats on the stack (as ContentVersion::Format does): no allocation per response.
  const absl::AlphaNum version_text(absl::Hex(version.value(), absl::kZeroPad16));
  const absl::AlphaNum nonce_text(nonce);
  EncodeResponseHeader({version_text.data(), version_text.size()}, TypeUrl(type),
                       {nonce_text.data(), nonce_text.size()},
                       service_->options_.control_plane_id, &out->header);
  state.sent_version = version.value();
  state.sent_nonce = nonce;

  XdsMetrics& metrics = service_->metrics_;
  metrics.pushes_total.fetch_add(1, std::memory_order_relaxed);
  metrics.resources_sent_total.fetch_add(out->resources.size(), std::memory_order_relaxed);
  metrics.bytes_sent_total.fetch_add(out->size(), std::memory_order_relaxed);
  if (state.pending_since) metrics.ObservePushLatency(absl::Now() - *state.pending_since);
  LogDebug("xds: client {}: {} version {} with {} resources", node_id_, ShortName(type),
           ContentVersion::Format(state.sent_version), out->resources.size());
  return true;
}

nlohmann::json AdsStream::DebugJson() const {
  absl::MutexLock lock(&mu_);
  nlohmann::json out;
  out["node_id"] = node_id_;
  out["user_agent"] = user_agent_;
  out["zone"] = profile_.zone;
  if (!profile_.note.empty()) out["capabilities_withheld"] = profile_.note;
  out["peer"] = peer_;
  for (ResourceType type : kAllResourceTypes) {
    const TypeState& state = types_[static_cast<size_t>(type)];
    if (!state.seen_request) continue;
    nlohmann::json t;
    nlohmann::json subscribed = nlohmann::json::array();
    nlohmann::json resources = nlohmann::json::object();
    for (const Subscription& subscription : state.subscriptions) {
      if (subscription.listed) subscribed.push_back(subscription.name->text);
      if (!subscription.acked) continue;
      std::string json;
      if (google::protobuf::util::MessageToJsonString(subscription.acked->any, &json).ok()) {
        try {
          resources[subscription.name->text] = nlohmann::json::parse(json);
        } catch (const nlohmann::json::exception&) {
          resources[subscription.name->text] = json;
        }
      }
    }
    t["subscribed"] = std::move(subscribed);
    t["wildcard"] = state.wildcard;
    t["sent_version"] = state.sent_nonce != 0 ? ContentVersion::Format(state.sent_version) : "";
    t["acked_version"] = state.acked_any ? ContentVersion::Format(state.acked_version) : "";
    t["nacks"] = state.nacks;
    if (!state.last_nack.empty()) t["last_nack"] = state.last_nack;
    t["resources"] = std::move(resources);
    out[std::string(ShortName(type))] = std::move(t);
  }
  return out;
}

}  // namespace podlb::xds
