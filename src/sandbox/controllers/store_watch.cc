#include "sandbox/controllers/store_watch.h"

#include <ctime>

#include "core/logging.h"

namespace podlb::sandbox {

StoreWatch::StoreWatch(ResourceStore& store, std::string resource, Handler handler)
    : store_(store), resource_(std::move(resource)), handler_(std::move(handler)) {}

StoreWatch::~StoreWatch() { Stop(); }

void StoreWatch::Start() {
  ListAll();
  thread_ = std::thread([this] { Run(); });
}

void StoreWatch::Stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void StoreWatch::ListAll() {
  ResourceStore::ListResult list = store_.List(resource_, "", LabelSelector{});
  version_ = list.resource_version;
  for (auto& item : list.items) handler_(WatchEvent{"ADDED", std::move(item)});
}

void StoreWatch::Run() {
  constexpr auto kPoll = std::chrono::milliseconds(200);
  while (!stop_) {
    auto watcher = store_.Watch(resource_, "", LabelSelector{}, version_);
    if (!watcher.ok()) {
      if (watcher.status().code() == absl::StatusCode::kOutOfRange) {
        // Our version was compacted away: start over from a fresh list, as informers do.
        LogInfo("controller watch on {} expired; relisting", resource_);
        ListAll();
      } else {
        LogWarn("controller watch on {} failed: {}; retrying", resource_,
                std::string(watcher.status().message()));
        std::this_thread::sleep_for(kPoll);  // back off before retrying a broken store
      }
      continue;
    }
    while (!stop_) {
      auto started = std::chrono::steady_clock::now();
      // The timeout bounds how long Stop waits; it is not a poll of the store.
      std::optional<WatchEvent> event = (*watcher)->Next(kPoll);
      if (!event) {
        // A watch the store closed returns at once; reopen it from where we are.
        if (std::chrono::steady_clock::now() - started < kPoll / 2) break;
        continue;
      }
      if (event->type == "BOOKMARK") {
        version_ = std::max(version_, ObjectVersion(event->object));
        continue;
      }
      version_ = std::max(version_, ObjectVersion(event->object));
      handler_(*event);
    }
  }
}

std::string ObjectKey(const nlohmann::json& object) {
  const nlohmann::json& meta = object.value("metadata", nlohmann::json::object());
  return meta.value("namespace", std::string()) + "/" + meta.value("name", std::string());
}

std::pair<std::string, std::string> SplitObjectKey(const std::string& key) {
  auto slash = key.find('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

uint64_t ObjectVersion(const nlohmann::json& object) {
  try {
    return std::stoull(object.at("metadata").at("resourceVersion").get<std::string>());
  } catch (const std::exception&) {
    return 0;
  }
}

std::string NowRfc3339() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

absl::Status MutateObject(ResourceStore& store, const std::string& resource, const std::string& ns,
                          const std::string& name,
                          const std::function<bool(nlohmann::json&)>& mutate) {
  absl::Status last;
  for (int attempt = 0; attempt < 10; ++attempt) {
    auto object = store.Get(resource, ns, name);
    if (!object.ok()) return object.status();
    if (!mutate(*object)) return absl::OkStatus();
    auto updated = store.Update(resource, ns, *object);
    if (updated.ok()) return absl::OkStatus();
    last = updated.status();
    if (last.code() != absl::StatusCode::kAborted) return last;
  }
  return last;
}

void SetCondition(nlohmann::json& status, const std::string& type, bool value,
                  const std::string& reason) {
  nlohmann::json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = nlohmann::json::array();
  const std::string text = value ? "True" : "False";
  for (auto& condition : conditions) {
    if (condition.value("type", "") != type) continue;
    if (condition.value("status", "") != text) {
      condition["status"] = text;
      condition["lastTransitionTime"] = NowRfc3339();
    }
    if (reason.empty()) {
      condition.erase("reason");
    } else {
      condition["reason"] = reason;
    }
    return;
  }
  nlohmann::json condition = {
      {"type", type}, {"status", text}, {"lastTransitionTime", NowRfc3339()}};
  if (!reason.empty()) condition["reason"] = reason;
  conditions.push_back(std::move(condition));
}

}  // namespace podlb::sandbox
