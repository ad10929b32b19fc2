#include "xds/ads_stream.h"

#include "absl/strings/str_cat.h"
#include "core/hash.h"
#include "core/logging.h"
#include "google/protobuf/util/json_util.h"
#include "xds/ads_service.h"

namespace podlb::xds {

using envoy::service::discovery::v3::DiscoveryRequest;

namespace {

// A response's version_info, derived from what it carries (FNV-1a 64 over each resource's name,
// type and bytes, length-prefixed, in name order) rather than counted per stream: replicas of
// the control plane, and one replica before and after a restart, then give the same resources
// the same version, so a client that reconnects elsewhere sees no version change and debug
// views agree. The hash must not be seeded per process (absl::Hash is), or replicas disagree.
std::string ContentVersion(const std::map<std::string, CachedResource>& resources) {
  uint64_t hash = kFnv1a64Offset;
  auto mix = [&](std::string_view bytes) {
    char length[8];
    for (size_t n = bytes.size(), i = 0; i < 8; ++i, n >>= 8) length[i] = static_cast<char>(n & 0xff);
    hash = Fnv1a64(std::string_view(length, 8), hash);
    hash = Fnv1a64(bytes, hash);
  };
  for (const auto& [name, resource] : resources) {
    mix(name);
    mix(resource.any->type_url());
    mix(resource.any->value());
  }
  return absl::StrCat(absl::Hex(hash, absl::kZeroPad16));
}

}  // namespace

AdsStream::AdsStream(AdsService* service, uint64_t id, std::string peer)
    : service_(service), id_(id), peer_(std::move(peer)) {}

void AdsStream::Begin() { StartRead(&request_); }

void AdsStream::OnReadDone(bool ok) {
  if (!ok) {
    {
      absl::MutexLock lock(&mu_);
      read_closed_ = true;
    }
    Pump();
    return;
  }
  {
    absl::MutexLock lock(&mu_);
    HandleRequestLocked(request_);
  }
  StartRead(&request_);
  Pump();
}

void AdsStream::OnWriteDone(bool ok) {
  {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    // A failed write means the stream is gone; the outstanding read fails too and closes it.
    if (!ok) read_closed_ = true;
  }
  Pump();
}

void AdsStream::OnDone() {
  {
    absl::MutexLock lock(&mu_);
    LogInfo("xds: client {} ({}, {}) disconnected", node_id_, user_agent_, peer_);
  }
  service_->RemoveStream(id_);  // may destroy this
}

void AdsStream::Pump() {
  enum { kNothing, kWrite, kFinish } action = kNothing;
  {
    absl::MutexLock lock(&mu_);
    if (finished_ || writing_) return;
    if (read_closed_) {
      finished_ = true;
      action = kFinish;
    } else if (BuildNextResponseLocked()) {
      writing_ = true;
      action = kWrite;
    }
  }
  // response_ is stable while writing_ is set: only Pump writes it, and only when not writing.
  if (action == kWrite) StartWrite(&response_);
  if (action == kFinish) Finish(grpc::Status::OK);
}

void AdsStream::OnServicesChanged(const std::set<ServiceKey>& keys, absl::Time changed_at) {
  {
    absl::MutexLock lock(&mu_);
    bool affected = any_wildcard_;
    for (const ServiceKey& key : keys) {
      if (affected) break;
      affected = watched_.count(key) > 0;
    }
    if (!affected) return;
    for (TypeState& state : types_) {
      if (!state.seen_request) continue;
      state.dirty = true;
      if (!state.pending_since || changed_at < *state.pending_since) state.pending_since = changed_at;
    }
  }
  Pump();
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
      state.acked = state.sent;
      service_->metrics_.acks_total.fetch_add(1, std::memory_order_relaxed);
    }
  }
  // A request with a stale nonce still carries the client's current subscription list, which is
  // the truth we serve from; only its ACK/NACK meaning is void.

  std::set<std::string> names(request.resource_names().begin(), request.resource_names().end());
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
  for (auto it = state.sent.begin(); it != state.sent.end();) {
    // A name dropped now is re-sent in full when the client subscribes to it again.
    it = names.count(it->first) || state.wildcard ? std::next(it) : state.sent.erase(it);
  }
  state.names = std::move(names);
  state.seen_request = true;
  if (added) {
    state.dirty = true;
    state.force = true;
  }
  RecomputeWatchedKeysLocked();
}

void AdsStream::RecomputeWatchedKeysLocked() {
  watched_.clear();
  any_wildcard_ = false;
  for (const TypeState& state : types_) {
    any_wildcard_ = any_wildcard_ || state.wildcard;
    for (const std::string& name : state.names) {
      if (auto key = ResourceCache::KeyOf(name)) watched_.insert(*key);
    }
  }
}

bool AdsStream::BuildNextResponseLocked() {
  for (ResourceType type : kAllResourceTypes) {
    TypeState& state = types_[static_cast<size_t>(type)];
    if (!state.dirty) continue;
    bool send = BuildResponseLocked(type, state);
    state.dirty = false;
    state.force = false;
    state.pending_since.reset();
    if (send) return true;
  }
  return false;
}

bool AdsStream::BuildResponseLocked(ResourceType type, TypeState& state) {
  std::vector<std::string> names(state.names.begin(), state.names.end());
  if (state.wildcard) {
    for (std::string& name : service_->cache_.AllNames(type)) names.push_back(std::move(name));
  }
  std::map<std::string, CachedResource> current;
  for (const std::string& name : names) {
    if (auto resource = service_->cache_.Get(type, name, profile_)) {
      current.emplace(name, std::move(*resource));
    }
  }
  bool changed = current.size() != state.sent.size();
  for (auto a = current.begin(), b = state.sent.begin(); !changed && a != current.end(); ++a, ++b) {
    changed = a->first != b->first || !a->second.SameContent(b->second);
  }
  if (!changed && !state.force) return false;
  // RDS and EDS responses carry what exists; an empty one tells the client nothing.
  if (current.empty() && !IsFullStateType(type)) return false;

  response_.Clear();
  response_.set_type_url(std::string(TypeUrl(type)));
  response_.set_version_info(ContentVersion(current));
  response_.set_nonce(std::to_string(++nonce_counter_));
  response_.mutable_control_plane()->set_identifier(service_->options_.control_plane_id);
  for (const auto& [name, resource] : current) *response_.add_resources() = *resource.any;
  state.sent_version = response_.version_info();
  state.sent_nonce = response_.nonce();
  state.sent = std::move(current);

  service_->metrics_.pushes_total.fetch_add(1, std::memory_order_relaxed);
  service_->metrics_.resources_sent_total.fetch_add(response_.resources_size(),
                                                    std::memory_order_relaxed);
  if (state.pending_since) {
    service_->metrics_.ObservePushLatency(absl::Now() - *state.pending_since);
  }
  LogDebug("xds: client {}: {} version {} with {} resources", node_id_, ShortName(type),
           state.sent_version, response_.resources_size());
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
    for (const auto& [name, resource] : state.acked) {
      std::string json;
      if (google::protobuf::util::MessageToJsonString(*resource.any, &json).ok()) {
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
