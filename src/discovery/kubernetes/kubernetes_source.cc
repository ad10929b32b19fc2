#include "discovery/kubernetes/kubernetes_source.h"

#include <algorithm>
#include <random>

#include "absl/strings/str_join.h"
#include "core/status_macros.h"
#include "discovery/kubernetes/endpoint_slice_decoder.h"

namespace podlb {
namespace {

constexpr char kServiceNameLabel[] = "kubernetes.io/service-name";
// A watch that ends sooner than this is treated as a failure for backoff purposes.
constexpr std::chrono::seconds kMinHealthyWatch{1};

// 410 Gone, as a Status: the resourceVersion is too old, the client must relist.
bool IsGone(const absl::Status& s) { return absl::IsOutOfRange(s); }
// Bad data from the server: keep the last good state and relist.
bool IsBadData(const absl::Status& s) {
  return absl::IsDataLoss(s) || absl::IsInvalidArgument(s) || absl::IsResourceExhausted(s);
}

}  // namespace

Backoff::Backoff(std::chrono::milliseconds initial, std::chrono::milliseconds max,
                 std::function<double()> random)
    : initial_(initial), max_(max), base_(initial), random_(std::move(random)) {}

std::chrono::milliseconds Backoff::Next() {
  const double factor = 0.5 + random_();
  auto delay = std::chrono::milliseconds(static_cast<int64_t>(base_.count() * factor));
  delay = std::min(delay, max_);
  base_ = std::min(base_ * 2, max_);
  return delay;
}

KubernetesSource::KubernetesSource(KubeConfig config, KubernetesSourceOptions options,
                                   Registry& registry)
    : config_(std::move(config)),
      options_(std::move(options)),
      registry_(registry),
      wanted_(options_.services.begin(), options_.services.end()) {
  random_ = options_.random;
  if (!random_) {
    auto engine = std::make_shared<std::mt19937_64>(std::random_device{}());
    random_ = [engine] { return std::uniform_real_distribution<double>(0, 1)(*engine); };
  }
  const std::string scope_path = options_.all_namespaces ? "" : "/namespaces/" + options_.ns;
  scope_ = options_.all_namespaces ? "in all namespaces" : "in \"" + options_.ns + "\"";
  // One selector for all the wanted services: one watch, however many services.
  std::string selector = kServiceNameLabel;
  if (!wanted_.empty())
    selector += " in (" + absl::StrJoin(wanted_, ",") + ")";
  resources_[kSlices] =
      Resource{"endpointslices", "/apis/discovery.k8s.io/v1" + scope_path + "/endpointslices",
               selector, "discovery.k8s.io/endpointslices"};
  // Services carry no label to select on; filtered here (the list is small and cheap).
  resources_[kServices] =
      Resource{"services", "/api/v1" + scope_path + "/services", "", "services (core v1)"};
}

KubernetesSource::~KubernetesSource() { Stop(); }

absl::Status KubernetesSource::Start() {
  if (options_.all_namespaces && !options_.services.empty())
    return absl::InvalidArgumentError(
        "kubernetes: all namespaces are followed whole; a list of services cannot be combined "
        "with them");
  if (!options_.all_namespaces && options_.ns.empty())
    return absl::InvalidArgumentError("kubernetes: no namespace given");
  if (options_.list_page_size <= 0)
    return absl::InvalidArgumentError("kubernetes: list page size must be positive");
  ASSIGN_OR_RETURN(client_, ApiClient::Create(config_, options_.client));
  threads_.emplace_back([this] { Run(kSlices); });
  threads_.emplace_back([this] { Run(kServices); });
  return absl::OkStatus();
}

void KubernetesSource::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  cancel_.store(true, std::memory_order_release);
  for (auto& t : threads_)
    if (t.joinable()) t.join();
  threads_.clear();
}

bool KubernetesSource::HasSynced() const {
  absl::MutexLock lock(&mu_);
  return synced_[kSlices] && synced_[kServices];
}

absl::Status KubernetesSource::Health() const {
  absl::MutexLock lock(&mu_);
  if (!health_[kSlices].ok()) return health_[kSlices];
  if (!health_[kServices].ok()) return health_[kServices];
  if (!synced_[kSlices] || !synced_[kServices])
    return absl::UnavailableError("kubernetes: first list not complete yet");
  return absl::OkStatus();
}

double KubernetesSource::Random() {
  absl::MutexLock lock(&random_mu_);
  return random_();
}

bool KubernetesSource::Sleep(std::chrono::milliseconds delay) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(delay));
  return !stopping_;
}

void KubernetesSource::Run(Kind kind) {
  Backoff backoff(options_.backoff_initial, options_.backoff_max, [this] { return Random(); });
  std::string rv;
  bool need_list = true;
  int expired_lists = 0;  // in a row
  while (!cancel_.load(std::memory_order_acquire)) {
    absl::Status status;
    if (need_list) {
      status = ListOnce(kind, &rv);
      if (status.ok()) {
        need_list = false;
        expired_lists = 0;
        backoff.Reset();
        {
          absl::MutexLock lock(&mu_);
          synced_[kind] = true;
        }
        ReportHealthy(kind, /*proven=*/false);
      }
    }
    if (status.ok()) {
      const auto started = std::chrono::steady_clock::now();
      status = WatchOnce(kind, &rv);
      // The stream ended (server timeout): resume from the last version seen, never relist.
      if (status.ok()) {
        ReportHealthy(kind, /*proven=*/true);
        // A server that ends every watch at once must not make us spin.
        if (std::chrono::steady_clock::now() - started < kMinHealthyWatch) {
          if (!Sleep(backoff.Next())) return;
        } else {
          backoff.Reset();
        }
        continue;
      }
    }
    if (absl::IsCancelled(status)) return;
    if (IsGone(status) && need_list) {
      // The pages after the first are read at the first page's version; history moved past it
      // before the last page. client-go's reflector starts over, and so do we: the state
      // published so far stays until a whole list is in.
      LogInfo(
          "kubernetes: {} {}: the list expired before its last page (410 Expired); "
          "relisting from the start",
          resources_[kind].plural, scope_);
      // A server that expires every list must not make us relist in a tight loop.
      if (++expired_lists > 1 && !Sleep(backoff.Next())) return;
      continue;
    }
    if (IsGone(status)) {
      LogInfo("kubernetes: {} {}: resourceVersion {} expired (410 Gone); relisting",
              resources_[kind].plural, scope_, rv);
      need_list = true;
      continue;
    }
    ReportFailure(kind, status);
    if (absl::IsUnauthenticated(status)) client_->token().Invalidate();
    if (IsBadData(status)) need_list = true;
    if (!Sleep(backoff.Next())) return;
  }
}

absl::Status KubernetesSource::HttpError(Kind kind, const char* verb,
                                         const HttpResponse& response) const {
  const Resource& r = resources_[kind];
  return KubernetesHttpError(response, verb, r.plural, scope_, r.rbac,
                             options_.all_namespaces
                                 ? "in all namespaces (a ClusterRole and ClusterRoleBinding)"
                                 : "in namespace " + options_.ns);
}

absl::Status KubernetesSource::ListOnce(Kind kind, std::string* rv) {
  const Resource& r = resources_[kind];
  // Parameters in client-go's (alphabetical) order.
  std::string query = "limit=" + std::to_string(options_.list_page_size);
  if (!r.selector.empty()) query = "labelSelector=" + QueryEscape(r.selector) + "&" + query;
  std::vector<nlohmann::json> items;
  std::string version;
  std::string next;  // continue token; empty after the last page
  do {
    const std::string path =
        r.path + "?" + (next.empty() ? "" : "continue=" + QueryEscape(next) + "&") + query;
    ASSIGN_OR_RETURN(HttpResponse response, client_->Get(path, &cancel_));
    if (response.status != 200) return HttpError(kind, "listing", response);
    ASSIGN_OR_RETURN(ListBody page, DecodeList(response.body, r.plural + " " + scope_));
    // Every page carries the version of the snapshot the pages are read from.
    version = std::move(page.resource_version);
    next = std::move(page.continue_token);
    if (items.empty()) {
      items = std::move(page.items);
    } else {
      items.insert(items.end(), std::make_move_iterator(page.items.begin()),
                   std::make_move_iterator(page.items.end()));
    }
  } while (!next.empty());
  RETURN_IF_ERROR(ApplyList(kind, std::move(items)));
  *rv = version;
  return absl::OkStatus();
}

absl::Status KubernetesSource::WatchOnce(Kind kind, std::string* rv) {
  const Resource& r = resources_[kind];
  const int timeout = static_cast<int>(options_.watch_timeout_seconds * (1.0 + Random()));
  std::string path = r.path + "?watch=true&allowWatchBookmarks=true&resourceVersion=" +
                     QueryEscape(*rv) + "&timeoutSeconds=" + std::to_string(timeout);
  if (!r.selector.empty()) path += "&labelSelector=" + QueryEscape(r.selector);
  const std::string what = r.plural + " " + scope_;
  auto on_line = [&](std::string_view line) -> absl::Status {
    ASSIGN_OR_RETURN(WatchEventLine event, DecodeWatchEvent(line, what));
    if (event.type == "ERROR") {
      if (event.error_code == 410) return absl::OutOfRangeError("410 Gone: " + event.error_message);
      return absl::UnavailableError("kubernetes: watch of " + what + " failed: error " +
                                    std::to_string(event.error_code) + " " + event.error_message);
    }
    if (event.type != "BOOKMARK") {
      RETURN_IF_ERROR(ApplyEvent(kind, event.type, event.object));
      if (bad_data_[kind]) ReportHealthy(kind, /*proven=*/true);
    }
    if (!event.resource_version.empty()) *rv = event.resource_version;
    return absl::OkStatus();
  };
  // Healthy again as soon as the server accepts the watch, not only at the next change.
  auto on_open = [&] { ReportHealthy(kind, /*proven=*/false); };
  ASSIGN_OR_RETURN(HttpResponse response,
                   client_->Watch(path, on_open, on_line, &cancel_,
                                  std::chrono::seconds(timeout + 30)));
  if (response.status != 200) return HttpError(kind, "watching", response);
  return absl::OkStatus();
}

bool KubernetesSource::Wanted(const std::string& service_name) const {
  return !service_name.empty() && (wanted_.empty() || wanted_.count(service_name) > 0);
}

absl::StatusOr<KubernetesSource::ServiceId> KubernetesSource::IdOf(
    const std::string& object_ns, const std::string& service_name) const {
  if (!options_.all_namespaces) return ServiceId(options_.ns, service_name);
  if (object_ns.empty()) {
    return absl::DataLossError("kubernetes: " + service_name +
                               " has no metadata.namespace in a list of all namespaces");
  }
  return ServiceId(object_ns, service_name);
}

ServiceState& KubernetesSource::StateLocked(const ServiceId& id) {
  auto it = services_.find(id);
  if (it == services_.end()) it = services_.emplace(id, ServiceState(id.first, id.second)).first;
  return it->second;
}

void KubernetesSource::PublishLocked(const ServiceId& id) {
  // Before the first slice list, a known Service would publish "no endpoints": consumers must
  // rather see nothing (or what they had) than a false empty set.
  if (!slices_listed_) return;
  auto it = services_.find(id);
  if (it == services_.end()) return;
  for (Publication& pub : it->second.TakePublications()) {
    if (pub.removed) {
      registry_.Remove(pub.keys);
    } else {
      registry_.Publish(pub.keys, std::move(pub.endpoints), std::move(pub.annotations));
    }
  }
  // Its keys were just removed; nothing more to remember.
  if (it->second.Empty()) services_.erase(it);
}

absl::Status KubernetesSource::ApplyList(Kind kind, std::vector<nlohmann::json> items) {
  // Decode everything first: a bad item leaves the published state untouched.
  std::map<ServiceId, std::vector<EndpointSlice>> slices;
  std::map<ServiceId, Service> services;
  for (const auto& item : items) {
    if (kind == kSlices) {
      ASSIGN_OR_RETURN(EndpointSlice slice, DecodeEndpointSlice(item));
      if (!Wanted(slice.service_name)) continue;
      ASSIGN_OR_RETURN(ServiceId id, IdOf(slice.ns, slice.service_name));
      slices[id].push_back(std::move(slice));
    } else {
      ASSIGN_OR_RETURN(Service service, DecodeService(item));
      if (!Wanted(service.name)) continue;
      ASSIGN_OR_RETURN(ServiceId id, IdOf(service.ns, service.name));
      services.emplace(id, std::move(service));
    }
  }
  absl::MutexLock lock(&state_mu_);
  if (kind == kSlices) slices_listed_ = true;
  std::set<ServiceId> touched;
  for (const auto& [id, state] : services_) touched.insert(id);
  for (const auto& [id, list] : slices) touched.insert(id);
  for (const auto& [id, service] : services) touched.insert(id);
  for (const ServiceId& id : touched) {
    ServiceState& state = StateLocked(id);
    if (kind == kSlices) {
      // Reconcile: slices that vanished while we were not watching are removed.
      std::vector<std::string> old;
      for (const auto& [slice_name, slice] : state.slices()) old.push_back(slice_name);
      for (const auto& slice_name : old) state.DeleteSlice(slice_name);
      if (auto it = slices.find(id); it != slices.end())
        for (EndpointSlice& slice : it->second) state.UpsertSlice(std::move(slice));
    } else {
      if (auto it = services.find(id); it != services.end())
        state.SetService(std::move(it->second));
      else
        state.ClearService();
    }
    PublishLocked(id);
  }
  return absl::OkStatus();
}

absl::Status KubernetesSource::ApplyEvent(Kind kind, const std::string& type,
                                          const nlohmann::json& object) {
  const bool deleted = type == "DELETED";
  if (!deleted && type != "ADDED" && type != "MODIFIED")
    return absl::DataLossError("kubernetes: unknown watch event type \"" + type + "\"");
  if (kind == kSlices) {
    ASSIGN_OR_RETURN(EndpointSlice slice, DecodeEndpointSlice(object));
    if (!Wanted(slice.service_name)) return absl::OkStatus();
    ASSIGN_OR_RETURN(ServiceId id, IdOf(slice.ns, slice.service_name));
    absl::MutexLock lock(&state_mu_);
    ServiceState& state = StateLocked(id);
    if (deleted)
      state.DeleteSlice(slice.name);
    else
      state.UpsertSlice(std::move(slice));
    PublishLocked(id);
  } else {
    ASSIGN_OR_RETURN(Service service, DecodeService(object));
    if (!Wanted(service.name)) return absl::OkStatus();
    ASSIGN_OR_RETURN(ServiceId id, IdOf(service.ns, service.name));
    absl::MutexLock lock(&state_mu_);
    ServiceState& state = StateLocked(id);
    if (deleted)
      state.ClearService();
    else
      state.SetService(std::move(service));
    PublishLocked(id);
  }
  return absl::OkStatus();
}

void KubernetesSource::ReportFailure(Kind kind, const absl::Status& status) {
  std::string message(status.message());
  if (message.find(resources_[kind].plural) == std::string::npos)
    message = resources_[kind].plural + " " + scope_ + ": " + message;
  if (message.rfind("kubernetes:", 0) != 0) message = "kubernetes: " + message;
  // After bad data, a successful relist or an opened watch does not prove the server healed
  // (the same bad event may come again): the log is cleared only once real events flow.
  bad_data_[kind] = IsBadData(status);
  if (IsBadData(status))
    message += "; keeping the last known endpoints and relisting";
  else
    message += "; keeping the last known endpoints, retrying with backoff";
  failure_log_[kind].Log(message);
  absl::MutexLock lock(&mu_);
  health_[kind] = absl::Status(status.code(), message);
}

void KubernetesSource::ReportHealthy(Kind kind, bool proven) {
  if (proven) bad_data_[kind] = false;
  if (!bad_data_[kind])
    failure_log_[kind].Clear("kubernetes: " + resources_[kind].plural + " " + scope_ +
                             " are in sync again");
  absl::MutexLock lock(&mu_);
  health_[kind] = absl::OkStatus();
}

}  // namespace podlb
