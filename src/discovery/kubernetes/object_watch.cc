#include "discovery/kubernetes/object_watch.h"

#include <random>

#include "core/status_macros.h"
#include "discovery/kubernetes/endpoint_slice_decoder.h"
#include "discovery/kubernetes/kubernetes_source.h"

namespace podlb {
namespace {

// A watch that ends sooner than this counts as a failure for backoff (as in KubernetesSource).
constexpr std::chrono::seconds kMinHealthyWatch{1};

}  // namespace

ObjectWatch::ObjectWatch(KubeConfig config, ObjectWatchOptions options, OnChange on_change)
    : config_(std::move(config)),
      options_(std::move(options)),
      on_change_(std::move(on_change)),
      collection_(options_.api_prefix + "/namespaces/" + options_.ns + "/" + options_.plural),
      resource_(options_.plural + " \"" + options_.name + "\""),
      scope_("in \"" + options_.ns + "\""),
      what_(resource_ + " " + scope_) {}

ObjectWatch::~ObjectWatch() { Stop(); }

absl::Status ObjectWatch::Start() {
  if (options_.ns.empty() || options_.name.empty())
    return absl::InvalidArgumentError(
        "kubernetes: the object to follow needs a namespace and a name");
  ASSIGN_OR_RETURN(client_, ApiClient::Create(config_, options_.client));
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void ObjectWatch::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  cancel_.store(true, std::memory_order_release);
  if (thread_.joinable()) thread_.join();
}

bool ObjectWatch::HasSynced() const {
  absl::MutexLock lock(&mu_);
  return synced_;
}

bool ObjectWatch::Sleep(std::chrono::milliseconds delay) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&stopping_), absl::FromChrono(delay));
  return !stopping_;
}

double ObjectWatch::Random() { return std::uniform_real_distribution<double>(0, 1)(random_); }

void ObjectWatch::Run() {
  Backoff backoff(options_.backoff_initial, options_.backoff_max, [this] { return Random(); });
  std::string rv;
  bool need_list = true;
  while (!cancel_.load(std::memory_order_acquire)) {
    absl::Status status;
    if (need_list) {
      status = ListOnce(&rv);
      if (status.ok()) {
        need_list = false;
        backoff.Reset();
        absl::MutexLock lock(&mu_);
        synced_ = true;
      }
    }
    if (status.ok()) {
      const auto started = std::chrono::steady_clock::now();
      status = WatchOnce(&rv);
      if (status.ok()) {
        // The server ended the watch (timeoutSeconds): resume from the last version seen.
        if (std::chrono::steady_clock::now() - started < kMinHealthyWatch) {
          if (!Sleep(backoff.Next())) return;
        } else {
          backoff.Reset();
        }
        continue;
      }
    }
    if (absl::IsCancelled(status)) return;
    if (absl::IsOutOfRange(status) && !need_list) {
      // 410 Gone: history moved past our version; a list says where the object stands now.
      LogInfo("kubernetes: {}: resourceVersion {} expired (410 Gone); relisting", what_, rv);
      need_list = true;
      continue;
    }
    ReportFailure(status);
    if (absl::IsUnauthenticated(status)) client_->token().Invalidate();
    // Bad data or an expired list: start over from a list.
    need_list = need_list || absl::IsDataLoss(status) || absl::IsInvalidArgument(status) ||
                absl::IsResourceExhausted(status);
    if (!Sleep(backoff.Next())) return;
  }
}

absl::Status ObjectWatch::HttpError(const char* verb, const HttpResponse& response) const {
  return KubernetesHttpError(response, verb, resource_, scope_, options_.rbac,
                             "in namespace " + options_.ns + " (a Role and RoleBinding)");
}

absl::Status ObjectWatch::ListOnce(std::string* rv) {
  const std::string path =
      collection_ + "?fieldSelector=" + QueryEscape("metadata.name=" + options_.name);
  ASSIGN_OR_RETURN(HttpResponse response, client_->Get(path, &cancel_));
  if (response.status != 200) return HttpError("listing", response);
  ASSIGN_OR_RETURN(ListBody list, DecodeList(response.body, what_));
  const nlohmann::json* found = nullptr;
  for (const auto& item : list.items) {
    // The selector already did this; a server that ignored it must not hand us another object.
    if (!item.is_object() || !item.contains("metadata")) continue;
    const nlohmann::json& meta = item.at("metadata");
    if (meta.is_object() && meta.value("name", "") == options_.name) found = &item;
  }
  // Before the report, so a reader of the log sees the recovery before what follows from it.
  failure_log_.Clear("kubernetes: " + what_ + " is followed again");
  on_change_(found);
  *rv = std::move(list.resource_version);
  return absl::OkStatus();
}

absl::Status ObjectWatch::WatchOnce(std::string* rv) {
  const int timeout = static_cast<int>(options_.watch_timeout_seconds * (1.0 + Random()));
  const std::string path =
      collection_ +
      "?allowWatchBookmarks=true&fieldSelector=" + QueryEscape("metadata.name=" + options_.name) +
      "&resourceVersion=" + QueryEscape(*rv) + "&timeoutSeconds=" + std::to_string(timeout) +
      "&watch=true";
  auto on_line = [&](std::string_view line) -> absl::Status {
    ASSIGN_OR_RETURN(WatchEventLine event, DecodeWatchEvent(line, what_));
    if (event.type == "ERROR") {
      if (event.error_code == 410) return absl::OutOfRangeError("410 Gone: " + event.error_message);
      return absl::UnavailableError("kubernetes: watch of " + what_ + " failed: error " +
                                    std::to_string(event.error_code) + " " + event.error_message);
    }
    if (event.type == "ADDED" || event.type == "MODIFIED") {
      on_change_(&event.object);
    } else if (event.type == "DELETED") {
      on_change_(nullptr);
    } else if (event.type != "BOOKMARK") {
      return absl::DataLossError("kubernetes: unknown watch event type \"" + event.type + "\"");
    }
    if (!event.resource_version.empty()) *rv = event.resource_version;
    return absl::OkStatus();
  };
  auto on_open = [&] { failure_log_.Clear("kubernetes: " + what_ + " is followed again"); };
  ASSIGN_OR_RETURN(HttpResponse response, client_->Watch(path, on_open, on_line, &cancel_,
                                                         std::chrono::seconds(timeout + 30)));
  if (response.status != 200) return HttpError("watching", response);
  return absl::OkStatus();
}

void ObjectWatch::ReportFailure(const absl::Status& status) {
  std::string message(status.message());
  if (message.find(what_) == std::string::npos) message = what_ + ": " + message;
  if (message.rfind("kubernetes:", 0) != 0) message = "kubernetes: " + message;
  failure_log_.Log(message + "; retrying with backoff");
}

}  // namespace podlb
