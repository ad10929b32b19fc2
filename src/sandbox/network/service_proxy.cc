#include "sandbox/network/service_proxy.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_cat.h"
#include "core/logging.h"
#include "sandbox/apiserver/json_path.h"
#include "sandbox/controllers/endpointslice_controller.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

// The work queue's key for "the pods changed": no Service key ("namespace/name") looks like it.
constexpr char kPodsKey[] = "*pods";

std::string StringOr(const json& value, const std::string& fallback) {
  return value.is_string() ? value.get<std::string>() : fallback;
}

// A Service's ClusterIP a proxy serves: none for headless and ExternalName Services.
std::string ProxiedClusterIp(const json& service) {
  if (At(service, {"spec", "type"}) == "ExternalName") return "";
  std::string ip = StringOr(At(service, {"spec", "clusterIP"}), "");
  return ip == "None" ? "" : ip;
}

}  // namespace

ServiceProxy::ServiceProxy(ResourceStore& store, ServiceProxyOptions options)
    : store_(store), options_(std::move(options)) {
  pod_nodes_.store(std::make_shared<const PodNodes>());
}

ServiceProxy::~ServiceProxy() { Stop(); }

absl::Status ServiceProxy::Start() {
  if (running_) return absl::FailedPreconditionError("service proxy: already started");
  running_ = true;
  service_watch_ = std::make_unique<StoreWatch>(
      store_, "services", [this](const WatchEvent& event) { queue_.Add(ObjectKey(event.object)); });
  slice_watch_ = std::make_unique<
      StoreWatch>(store_, "endpointslices", [this](const WatchEvent& event) {
    std::string service = StringOr(At(event.object, {"metadata", "labels", kServiceNameLabel}), "");
    if (service.empty()) return;  // a slice of no Service
    queue_.Add(StringOr(At(event.object, {"metadata", "namespace"}), "default") + "/" + service);
  });
  pod_watch_ = std::make_unique<StoreWatch>(store_, "pods",
                                            [this](const WatchEvent&) { queue_.Add(kPodsKey); });
  pod_watch_->Start();
  service_watch_->Start();
  slice_watch_->Start();
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void ServiceProxy::Stop() {
  if (!running_) return;
  running_ = false;
  if (service_watch_) service_watch_->Stop();
  if (slice_watch_) slice_watch_->Stop();
  if (pod_watch_) pod_watch_->Stop();
  queue_.ShutDown();
  if (thread_.joinable()) thread_.join();
  for (auto& [service, listeners] : listeners_) {
    for (auto& [address, listener] : listeners) listener.forwarder->Stop();
  }
  listeners_.clear();
  PublishState();
}

void ServiceProxy::Run() {
  while (auto key = queue_.Get()) {
    if (*key == kPodsKey) {
      RefreshPodNodes();
    } else {
      try {
        ReconcileService(*key);
      } catch (const std::exception& e) {
        // Objects in the store passed validation; a throw here is a bug in this file.
        LogError("service proxy: Service {}: {}; its ports keep their last state", *key, e.what());
      }
    }
    PublishState();
  }
}

void ServiceProxy::RefreshPodNodes() {
  auto nodes = std::make_shared<PodNodes>();
  for (const auto& pod : store_.List("pods", "", LabelSelector{}).items) {
    std::string ip = StringOr(At(pod, {"status", "podIP"}), "");
    std::string node = StringOr(At(pod, {"spec", "nodeName"}), "");
    if (!ip.empty() && !node.empty()) (*nodes)[ip] = node;
  }
  pod_nodes_.store(std::move(nodes), std::memory_order_release);
}

ServiceProxy::Backends ServiceProxy::ReadyEndpoints(const std::vector<json>& slices,
                                                    const std::string& port_name, bool local) {
  Backends backends;
  backends.local = local;
  for (const auto& slice : slices) {
    // The slice controller resolved targetPort per pod into the slice port of this name.
    std::optional<int> target;
    const json& slice_ports = At(slice, {"ports"});
    for (size_t p = 0; slice_ports.is_array() && p < slice_ports.size(); ++p) {
      if (StringOr(At(slice_ports[p], {"name"}), "") == port_name &&
          At(slice_ports[p], {"port"}).is_number_integer()) {
        target = At(slice_ports[p], {"port"}).get<int>();
      }
    }
    if (!target) continue;
    const json& endpoints = At(slice, {"endpoints"});
    for (size_t e = 0; endpoints.is_array() && e < endpoints.size(); ++e) {
      const json& ready = At(endpoints[e], {"conditions", "ready"});
      // A missing ready condition means ready (discovery.k8s.io/v1 EndpointConditions).
      if (ready.is_boolean() && !ready.get<bool>()) continue;
      // kube-proxy uses an endpoint's first address.
      const json& addresses = At(endpoints[e], {"addresses"});
      if (!addresses.is_array() || addresses.empty() || !addresses[0].is_string()) continue;
      backends.ready.push_back({absl::StrCat(addresses[0].get<std::string>(), ":", *target),
                                StringOr(At(endpoints[e], {"nodeName"}), "")});
    }
  }
  return backends;
}

void ServiceProxy::ReconcileService(const std::string& key) {
  auto slash = key.find('/');
  std::string ns = key.substr(0, slash);
  std::string name = key.substr(slash + 1);
  auto service = store_.Get("services", ns, name);
  std::string cluster_ip = service.ok() ? ProxiedClusterIp(*service) : "";

  // The ports to serve, by "clusterIP:port".
  struct Wanted {
    uint16_t port = 0;
    ServedPort served;
    Backends backends;
  };
  std::map<std::string, Wanted> desired;
  if (!cluster_ip.empty()) {
    bool local = At(*service, {"spec", "internalTrafficPolicy"}) == "Local";
    auto selector = LabelSelector::Parse(std::string(kServiceNameLabel) + "=" + name);
    std::vector<json> slices;
    if (selector.ok()) slices = store_.List("endpointslices", ns, *selector).items;
    const json& ports = At(*service, {"spec", "ports"});
    for (size_t i = 0; ports.is_array() && i < ports.size(); ++i) {
      const json& port = ports[i];
      if (StringOr(At(port, {"protocol"}), "TCP") != "TCP") continue;  // a TCP forwarder
      const json& number = At(port, {"port"});
      if (!number.is_number_integer()) continue;
      Wanted wanted;
      wanted.port = static_cast<uint16_t>(number.get<int>());
      wanted.served.service = key;
      wanted.served.port_name = StringOr(At(port, {"name"}), "");
      wanted.served.address = absl::StrCat(cluster_ip, ":", wanted.port);
      wanted.served.local = local;
      wanted.backends = ReadyEndpoints(slices, wanted.served.port_name, local);
      for (const auto& backend : wanted.backends.ready) {
        wanted.served.endpoints.push_back(backend.address + "@" + backend.node);
      }
      std::sort(wanted.served.endpoints.begin(), wanted.served.endpoints.end());
      std::string address = wanted.served.address;
      desired[address] = std::move(wanted);
    }
  }

  auto& current = listeners_[key];
  // Ports gone (or the Service gone): close their listeners; connections through them close too.
  for (auto it = current.begin(); it != current.end();) {
    if (desired.count(it->first) > 0) {
      ++it;
      continue;
    }
    LogDebug("service proxy: Service {} no longer serves {}", key, it->first);
    it->second.forwarder->Stop();
    std::string address = it->first;
    it = current.erase(it);
    auto waiting = bind_failed_.find(address);
    if (waiting != bind_failed_.end()) queue_.Add(waiting->second);  // its turn to bind
  }
  for (auto& [address, wanted] : desired) {
    auto snapshot = std::make_shared<const Backends>(std::move(wanted.backends));
    auto existing = current.find(address);
    if (existing != current.end()) {
      existing->second.backends->store(std::move(snapshot), std::memory_order_release);
      existing->second.served = std::move(wanted.served);
      continue;
    }
    auto slot = std::make_shared<std::atomic<std::shared_ptr<const Backends>>>(snapshot);
    auto forwarder = MakeForwarder(cluster_ip, wanted.port, slot);
    absl::Status started = forwarder->Start();
    if (!started.ok()) {
      auto [it, first_time] = bind_failed_.emplace(address, key);
      if (first_time || it->second != key) {
        it->second = key;
        LogWarn(
            "service proxy: Service {} port \"{}\" is not reachable at its ClusterIP: {} "
            "(another process, perhaps another sandbox, holds the address); its other ports "
            "and the other Services are served",
            key, wanted.served.port_name, std::string(started.message()));
      }
      continue;
    }
    if (bind_failed_.erase(address) > 0) {
      LogInfo("service proxy: Service {} is now served at {}", key, address);
    } else {
      LogDebug("service proxy: Service {} listening on {}", key, address);
    }
    current[address] = Listener{std::move(wanted.served), std::move(slot), std::move(forwarder)};
  }
  // A Service no longer wanting an address it could not bind stops waiting for it.
  for (auto it = bind_failed_.begin(); it != bind_failed_.end();) {
    it =
        it->second == key && desired.count(it->first) == 0 ? bind_failed_.erase(it) : std::next(it);
  }
  if (current.empty()) listeners_.erase(key);
}

std::unique_ptr<net::TcpForwarder> ServiceProxy::MakeForwarder(
    const std::string& ip, uint16_t port,
    std::shared_ptr<std::atomic<std::shared_ptr<const Backends>>> backends) {
  // The picker runs on the forwarder's one accept thread, so its generator needs no lock.
  auto pick = [this, backends = std::move(backends), rng = std::mt19937(std::random_device{}())](
                  const std::string& peer_ip) mutable -> std::optional<std::string> {
    std::shared_ptr<const Backends> current = backends->load(std::memory_order_acquire);
    if (!current || current->ready.empty()) return std::nullopt;
    if (!current->local) {
      std::uniform_int_distribution<size_t> index(0, current->ready.size() - 1);
      return current->ready[index(rng)].address;
    }
    // internalTrafficPolicy Local: the client's node is its pod's; a source that is no pod's
    // (the host) counts as the first node (docs/sandbox.md).
    std::string node = options_.nodes.empty() ? "" : options_.nodes.front().name;
    std::shared_ptr<const PodNodes> pods = pod_nodes_.load(std::memory_order_acquire);
    if (auto it = pods->find(peer_ip); it != pods->end()) node = it->second;
    std::vector<const Backend*> local;
    for (const auto& backend : current->ready) {
      if (backend.node == node) local.push_back(&backend);
    }
    if (local.empty()) return std::nullopt;
    std::uniform_int_distribution<size_t> index(0, local.size() - 1);
    return local[index(rng)]->address;
  };
  return std::make_unique<net::TcpForwarder>(ip, port, std::move(pick));
}

void ServiceProxy::PublishState() {
  ServiceProxyState state;
  for (const auto& [service, listeners] : listeners_) {
    for (const auto& [address, listener] : listeners) state.ports.push_back(listener.served);
  }
  std::sort(state.ports.begin(), state.ports.end(),
            [](const ServedPort& a, const ServedPort& b) { return a.address < b.address; });
  state.pod_nodes = pod_nodes_.load(std::memory_order_acquire);
  absl::MutexLock lock(&mu_);
  state_ = std::move(state);
}

ServiceProxyState ServiceProxy::State() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

bool ServiceProxy::WaitUntil(const std::function<bool(const ServiceProxyState&)>& done,
                             std::chrono::milliseconds timeout) const {
  absl::MutexLock lock(&mu_);
  auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return done(state_); };
  return mu_.AwaitWithTimeout(absl::Condition(&holds), absl::FromChrono(timeout));
}

}  // namespace podlb::sandbox
