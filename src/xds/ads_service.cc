#include "xds/ads_service.h"

#include <algorithm>

#include "core/logging.h"
#include "nlohmann/json.hpp"
#include "xds/ads_stream.h"

namespace podlb::xds {

AdsService::AdsService(Registry& registry, AdsServiceOptions options)
    : registry_(registry), options_(std::move(options)), cache_(registry, &metrics_) {}

AdsService::~AdsService() { Stop(); }

void AdsService::Start() {
  push_thread_ = std::thread([this] { PushLoop(); });
  subscription_ = registry_.SubscribeAll(
      [this](const ServiceKey& key, const EndpointSetConstSharedPtr&) {
        metrics_.registry_changes_total.fetch_add(1, std::memory_order_relaxed);
        absl::MutexLock lock(&pending_mu_);
        if (pending_.empty()) pending_since_ = absl::Now();
        pending_.insert(key);
      });
}

void AdsService::Stop() {
  subscription_.reset();
  {
    absl::MutexLock lock(&pending_mu_);
    stopping_ = true;
  }
  if (push_thread_.joinable()) push_thread_.join();
}

void AdsService::PushLoop() {
  for (;;) {
    std::set<ServiceKey> keys;
    absl::Time since;
    {
      absl::MutexLock lock(&pending_mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pending_mu_) {
        return stopping_ || !pending_.empty();
      };
      pending_mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      // Coalesce: let the burst that started at pending_since_ gather for the window, counted
      // from its first change, so no change waits longer than the window.
      absl::Time deadline = pending_since_ + absl::FromChrono(options_.coalesce_window);
      auto only_stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pending_mu_) {
        return stopping_;
      };
      pending_mu_.AwaitWithDeadline(absl::Condition(&only_stopping), deadline);
      if (stopping_) return;
      keys.swap(pending_);
      since = pending_since_;
    }
    // Deleted Services go before the fan-out: a client told one is gone must not find it still
    // counted in /metrics, and nothing in the fan-out asks for it.
    cache_.ForgetDeleted(keys);
    absl::Time fanout_start = absl::Now();
    // Per loop, the streams it carries that watch a changed Service.
    std::map<h2::EventLoop*, std::vector<std::shared_ptr<AdsStream>>> by_loop;
    size_t reached = 0;
    {
      absl::MutexLock lock(&streams_mu_);
      std::vector<uint64_t> ids(wildcard_streams_.begin(), wildcard_streams_.end());
      for (const ServiceKey& key : keys) {
        auto it = watchers_.find(key);
        if (it != watchers_.end()) ids.insert(ids.end(), it->second.begin(), it->second.end());
      }
      std::sort(ids.begin(), ids.end());
      ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
      for (uint64_t id : ids) {
        auto it = streams_.find(id);
        if (it == streams_.end()) continue;
        by_loop[it->second.loop].push_back(it->second.stream);
        ++reached;
      }
    }
    // One task per loop: each marks its streams and their connections write on that thread.
    // The keys are shared by the tasks, not copied per stream. A second task, which the loop
    // runs after the turn that built and wrote the responses, tells when that loop is done; the
    // last loop to be done records the batch's fan-out time (the server's own push time).
    auto shared_keys = std::make_shared<const std::set<ServiceKey>>(std::move(keys));
    if (by_loop.empty()) metrics_.ObserveFanout(absl::Now() - fanout_start, 0);
    auto loops_left = std::make_shared<std::atomic<size_t>>(by_loop.size());
    for (auto& [loop, streams] : by_loop) {
      loop->Post([this, loop = loop, streams = std::move(streams), shared_keys, since,
                  loops_left, fanout_start, reached] {
        for (const auto& stream : streams) stream->OnServicesChanged(*shared_keys, since);
        loop->Post([this, loops_left, fanout_start, reached] {
          if (loops_left->fetch_sub(1) == 1) {
            metrics_.ObserveFanout(absl::Now() - fanout_start, reached);
          }
        });
      });
    }
    // After the fan-out: its Gets have brought every entry still asked for to the new version
    // (keeping the old pointer where the bytes did not change, so streams skip it at once), and
    // what is left of an older version nobody asked for.
    cache_.Forget(*shared_keys);
  }
}

std::shared_ptr<AdsStream> AdsService::OpenStream(std::string peer, h2::EventLoop* loop) {
  std::shared_ptr<AdsStream> stream;
  {
    absl::MutexLock lock(&streams_mu_);
    uint64_t id = next_stream_id_++;
    auto& scratch = scratch_requests_[loop];
    if (!scratch) scratch = std::make_unique<envoy::service::discovery::v3::DiscoveryRequest>();
    stream = std::make_shared<AdsStream>(this, id, std::move(peer), scratch.get());
    StreamEntry& entry = streams_[id];
    entry.stream = stream;
    entry.loop = loop;
  }
  metrics_.streams_total.fetch_add(1, std::memory_order_relaxed);
  metrics_.connected_clients.fetch_add(1, std::memory_order_relaxed);
  return stream;
}

void AdsService::CloseStream(uint64_t id) {
  std::shared_ptr<AdsStream> last;  // destroyed after the lock is released
  absl::MutexLock lock(&streams_mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  last = std::move(it->second.stream);
  UnindexLocked(id);
  streams_.erase(it);
  metrics_.connected_clients.fetch_sub(1, std::memory_order_relaxed);
}

std::string AdsService::PrometheusText() const {
  std::string out = metrics_.PrometheusText();
  // Gauges of what the control plane holds; under churn they return to what clients ask for now
  // (the soak in tests/soak checks that they come back to their baseline).
  auto gauge = [&](const char* name, const char* help, size_t value) {
    out += "# HELP " + std::string(name) + " " + help + "\n# TYPE " + name + " gauge\n" + name +
           " " + std::to_string(value) + "\n";
  };
  gauge("podlb_xds_cache_resources", "Encoded resources held for the clients' variants.",
        cache_.size());
  gauge("podlb_xds_cache_services", "Services the resource cache holds a policy for.",
        cache_.ServiceCount());
  gauge("podlb_xds_registry_keys", "Service keys discovery holds (published, or held by a reader).",
        registry_.SlotCount());
  return out;
}

void AdsService::UnindexLocked(uint64_t id) {
  StreamEntry& entry = streams_[id];
  for (const ServiceKey* key : entry.keys) {
    auto it = watchers_.find(*key);
    if (it == watchers_.end()) continue;
    it->second.erase(id);
    if (it->second.empty()) watchers_.erase(it);
  }
  wildcard_streams_.erase(id);
  entry.keys.clear();
  entry.wildcard = false;
}

void AdsService::UpdateWatches(uint64_t id, std::set<ServiceKey> keys, bool wildcard) {
  absl::MutexLock lock(&streams_mu_);
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  StreamEntry& entry = it->second;
  if (entry.wildcard == wildcard && entry.keys.size() == keys.size() &&
      std::equal(keys.begin(), keys.end(), entry.keys.begin(),
                 [](const ServiceKey& a, const ServiceKey* b) { return a == *b; })) {
    return;
  }
  UnindexLocked(id);
  entry.keys.reserve(keys.size());
  for (const ServiceKey& key : keys) {
    auto watcher = watchers_.try_emplace(key).first;
    watcher->second.insert(id);
    entry.keys.push_back(&watcher->first);
  }
  if (wildcard) wildcard_streams_.insert(id);
  entry.wildcard = wildcard;
}

size_t AdsService::StreamCount() const {
  absl::MutexLock lock(&streams_mu_);
  return streams_.size();
}

std::string AdsService::DebugConfigJson() const {
  std::vector<std::shared_ptr<AdsStream>> streams;
  {
    absl::MutexLock lock(&streams_mu_);
    for (const auto& [id, entry] : streams_) streams.push_back(entry.stream);
  }
  nlohmann::json clients = nlohmann::json::array();
  for (const auto& stream : streams) clients.push_back(stream->DebugJson());
  nlohmann::json out;
  out["clients"] = std::move(clients);
  return out.dump(2);
}

}  // namespace podlb::xds
