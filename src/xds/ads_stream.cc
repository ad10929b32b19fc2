#include "xds/ads_stream.h"

#include "absl/strings/str_cat.h"
#include "core/hash.h"
#include "core/logging.h"
#include "google/protobuf/util/json_util.h"
#include "xds/ads_service.h"

namespace podlb::xds {

using envoy::service::discovery::v3::DiscoveryRequest;

AdsStream::AdsStream(AdsService* service, uint64_t id, std::string peer)
    : service_(service), id_(id), peer_(std::move(peer)) {}

absl::Status AdsStream::OnRequest(std::string_view bytes) {
  DiscoveryRequest request;
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
    if (!state.dirty_all && state.dirty_names.empty()) continue;
    bool send = BuildResponseLocked(type, state, out);
    state.dirty_all = false;
    state.dirty_names.clear();
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
    auto mark = [&](TypeState& state) {
      affected = true;
      if (!state.pending_since || changed_at < *state.pending_since) state.pending_since = changed_at;
    };
    if (any_wildcard_) {
      // A wildcard subscription covers Services nobody named: re-read the whole type.
      for (TypeState& state : types_) {
        if (!state.seen_request || !state.wildcard) continue;
        state.dirty_all = true;
        mark(state);
      }
    }
    for (const ServiceKey& key : keys) {
      auto it = watched_.find(key);
      if (it == watched_.end()) continue;
      for (const auto& [type, name] : it->second) {
        TypeState& state = types_[static_cast<size_t>(type)];
        state.dirty_names.insert(name);
        mark(state);
      }
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

  if (!request.response_nonce().empty() && request.response_nonce() == state.sent_nonce) {
    if (request.has_error_detail()) {
      ++state.nacks;
      state.last_nack = request.error_detail().message();
      service_->metrics_.nacks_total.fetch_add(1, std::memory_order_relaxed);
      // The client keeps what it accepted before; resending the same bytes would be rejected
      // again, so nothing is resent until the resources change.
      LogWarn("xds: client {} rejected {} version {} (keeps version \"{}\"): {}", node_id_,
              ShortName(type), state.sent_version, state.acked_version,
              request.error_detail().message());
    } else {
      state.acked_version = state.sent_version;
      state.acked = state.sent;  // a pointer copy
      service_->metrics_.acks_total.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // A request with a stale nonce still carries the client's current subscription list, which is
  // the truth we serve from; only its ACK/NACK meaning is void.

  // Most requests are ACKs that repeat the last list name for name: nothing else to do.
  const auto& listed = request.resource_names();
  if (state.seen_request && static_cast<size_t>(listed.size()) == state.request_names.size() &&
      std::equal(listed.begin(), listed.end(), state.request_names.begin())) {
    return;
  }
  state.request_names.assign(listed.begin(), listed.end());
  std::set<std::string> names(listed.begin(), listed.end());
  const bool was_wildcard = state.wildcard;
  if (!state.seen_request) {
    // An empty first request for a full-state type is a wildcard subscription. Later empty
    // requests mean "unsubscribed from everything" (gRPC clients send that when idle).
    state.wildcard = IsFullStateType(type) && names.empty();
  }
  if (names.erase("*") > 0) state.wildcard = true;
  bool added = !state.seen_request;
  for (const std::string& name : names) {
    if (!state.names.count(name)) added = true;
  }
  bool dropped = false;
  for (const auto& [name, resource] : *state.sent) {
    dropped = dropped || (!names.count(name) && !state.wildcard);
  }
  if (dropped) {
    // A name dropped now is re-sent in full when the client subscribes to it again.
    auto kept = std::make_shared<ResourceMap>();
    for (const auto& [name, resource] : *state.sent) {
      if (names.count(name) || state.wildcard) kept->emplace(name, resource);
    }
    state.sent = std::move(kept);
  }
  // An ACK repeats the subscription: only a different one touches the watch index (a lock
  // shared by every stream), or parses names again.
  bool subscription_changed = !state.seen_request || state.names != names || state.wildcard != was_wildcard;
  state.names = std::move(names);
  state.seen_request = true;
  if (added) {
    state.dirty_all = true;
    state.force = true;
  }
  if (subscription_changed) RecomputeWatchedKeysLocked();
}

void AdsStream::RecomputeWatchedKeysLocked() {
  watched_.clear();
  any_wildcard_ = false;
  for (ResourceType type : kAllResourceTypes) {
    const TypeState& state = types_[static_cast<size_t>(type)];
    any_wildcard_ = any_wildcard_ || state.wildcard;
    for (const std::string& name : state.names) {
      if (auto key = ResourceCache::KeyOf(name)) watched_[*key].emplace_back(type, name);
    }
  }
  std::set<ServiceKey> keys;
  for (const auto& [key, subscriptions] : watched_) keys.insert(key);
  service_->UpdateWatches(id_, std::move(keys), any_wildcard_);
}

bool AdsStream::BuildResponseLocked(ResourceType type, TypeState& state, AdsResponse* out) {
  ResourceCache& cache = service_->cache_;
  const ResourceMap& before = *state.sent;
  auto current = std::make_shared<ResourceMap>();
  if (state.dirty_all) {
    std::vector<std::string> names(state.names.begin(), state.names.end());
    if (state.wildcard) {
      for (std::string& name : cache.AllNames(type)) names.push_back(std::move(name));
    }
    for (const std::string& name : names) {
      if (auto resource = cache.Get(type, name, profile_)) current->emplace(name, std::move(resource));
    }
  } else {
    // Only the names whose Service changed are read again; the rest stand as sent.
    *current = before;
    for (const std::string& name : state.dirty_names) {
      if (!state.names.count(name)) continue;
      auto key = ResourceCache::KeyOf(name);
      EncodedResourceConstSharedPtr resource = key ? cache.Get(type, name, *key, profile_) : nullptr;
      if (resource) {
        (*current)[name] = std::move(resource);
      } else {
        current->erase(name);
      }
    }
  }
  std::vector<const ResourceMap::value_type*> changed;
  auto differs = [&](const ResourceMap::value_type& entry) {
    auto it = before.find(entry.first);
    return it == before.end() || !EncodedResource::SameContent(it->second, entry.second);
  };
  if (state.dirty_all) {
    for (const auto& entry : *current) {
      if (differs(entry)) changed.push_back(&entry);
    }
  } else {
    // Only the names read again can differ from what was sent.
    for (const std::string& name : state.dirty_names) {
      auto it = current->find(name);
      if (it != current->end() && differs(*it)) changed.push_back(&*it);
    }
  }
  bool removed = current->size() - changed.size() < before.size();
  if (changed.empty() && !removed && !state.force) return false;
  // LDS and CDS responses carry the whole subscription (a missing name means deleted). RDS and
  // EDS carry only what changed: a client keeps the resources a response leaves out, so sending
  // every watched endpoint set again would multiply the bytes per change by the subscription.
  std::vector<const ResourceMap::value_type*> carried;
  if (IsFullStateType(type) || state.force) {
    for (const auto& entry : *current) carried.push_back(&entry);
  } else {
    carried = std::move(changed);
  }
  // RDS and EDS responses carry what exists; an empty one tells the client nothing.
  if (carried.empty() && !IsFullStateType(type)) return false;

  envoy::service::discovery::v3::DiscoveryResponse header;
  header.set_type_url(std::string(TypeUrl(type)));
  header.set_version_info(ContentVersion(*current));
  header.set_nonce(std::to_string(++nonce_counter_));
  header.mutable_control_plane()->set_identifier(service_->options_.control_plane_id);
  out->header = header.SerializeAsString();
  out->resources.clear();
  out->resources.reserve(carried.size());
  for (const auto* entry : carried) out->resources.push_back(entry->second);
  state.sent_version = header.version_info();
  state.sent_nonce = header.nonce();
  state.sent = std::move(current);

  XdsMetrics& metrics = service_->metrics_;
  metrics.pushes_total.fetch_add(1, std::memory_order_relaxed);
  metrics.resources_sent_total.fetch_add(carried.size(), std::memory_order_relaxed);
  metrics.bytes_sent_total.fetch_add(out->size(), std::memory_order_relaxed);
  if (state.pending_since) metrics.ObservePushLatency(absl::Now() - *state.pending_since);
  LogDebug("xds: client {}: {} version {} with {} resources", node_id_, ShortName(type),
           state.sent_version, carried.size());
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
    t["subscribed"] = state.names;
    t["wildcard"] = state.wildcard;
    t["sent_version"] = state.sent_version;
    t["acked_version"] = state.acked_version;
    t["nacks"] = state.nacks;
    if (!state.last_nack.empty()) t["last_nack"] = state.last_nack;
    nlohmann::json resources = nlohmann::json::object();
    for (const auto& [name, resource] : *state.acked) {
      std::string json;
      if (google::protobuf::util::MessageToJsonString(resource->any, &json).ok()) {
        try {
          resources[name] = nlohmann::json::parse(json);
        } catch (const nlohmann::json::exception&) {
          resources[name] = json;
        }
      }
    }
    t["resources"] = std::move(resources);
    out[std::string(ShortName(type))] = std::move(t);
  }
  return out;
}

}  // namespace podlb::xds
