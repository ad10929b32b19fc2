#include "sandbox/controllers/namespace_controller.h"

#include <vector>

#include "core/logging.h"

namespace podlb::sandbox {

using json = nlohmann::json;

NamespaceController::~NamespaceController() { Stop(); }

absl::Status NamespaceController::Start() {
  watch_ = std::make_unique<StoreWatch>(store_, "namespaces", [this](const WatchEvent& event) {
    if (event.type == "DELETED") return;
    const json& meta = event.object.value("metadata", json::object());
    if (meta.contains("deletionTimestamp")) queue_.Add(meta.value("name", ""));
  });
  watch_->Start();
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void NamespaceController::Stop() {
  if (watch_) watch_->Stop();
  queue_.ShutDown();
  if (thread_.joinable()) thread_.join();
}

void NamespaceController::Run() {
  while (auto name = queue_.Get()) Finalize(*name);
}

void NamespaceController::Finalize(const std::string& name) {
  auto ns = store_.Get("namespaces", "", name);
  if (!ns.ok() || !(*ns)["metadata"].contains("deletionTimestamp")) return;
  size_t deleted = 0;
  // Workloads first, so their controllers stop replacing the pods deleted after them.
  std::vector<const ResourceType*> order;
  for (bool workloads : {true, false}) {
    for (const auto& type : ServedResourceTypes()) {
      bool workload = type.group == "apps" || type.group == "batch";
      if (type.namespaced && type.verbs.empty() && workload == workloads) {
        order.push_back(&type);
      }
    }
  }
  for (const ResourceType* type : order) {
    for (const auto& object : store_.List(type->resource, name, LabelSelector()).items) {
      std::string object_name = object["metadata"].value("name", "");
      auto result = store_.Delete(type->resource, name, object_name);
      if (result.ok()) {
        ++deleted;
      } else if (result.status().code() != absl::StatusCode::kNotFound) {
        LogWarn("namespace controller: cannot delete {} {}/{}: {}", type->resource, name,
                object_name, std::string(result.status().message()));
      }
    }
  }
  // A controller may still have written into the namespace (the store admits its writes); as
  // the real controller does, come back until the namespace is empty.
  for (const ResourceType* type : order) {
    if (!store_.List(type->resource, name, LabelSelector()).items.empty()) {
      queue_.AddAfter(name, std::chrono::milliseconds(200));
      return;
    }
  }
  auto removed = store_.Delete("namespaces", "", name);
  if (!removed.ok() && removed.status().code() != absl::StatusCode::kNotFound) {
    LogWarn("namespace controller: cannot remove namespace {}: {}", name,
            std::string(removed.status().message()));
    return;
  }
  LogInfo("namespace controller: namespace {} deleted with {} objects in it", name, deleted);
}

}  // namespace podlb::sandbox
