#include "sandbox/controllers/serviceaccount_controller.h"

#include "core/logging.h"

namespace podlb::sandbox {

using json = nlohmann::json;

ServiceAccountController::~ServiceAccountController() { Stop(); }

absl::Status ServiceAccountController::Start() {
  namespaces_ = std::make_unique<StoreWatch>(store_, "namespaces", [this](const WatchEvent& event) {
    if (event.type != "DELETED") Ensure(event.object["metadata"].value("name", ""));
  });
  accounts_ =
      std::make_unique<StoreWatch>(store_, "serviceaccounts", [this](const WatchEvent& event) {
        const json& meta = event.object["metadata"];
        if (event.type == "DELETED" && meta.value("name", "") == "default") {
          Ensure(meta.value("namespace", ""));
        }
      });
  namespaces_->Start();
  accounts_->Start();
  return absl::OkStatus();
}

void ServiceAccountController::Stop() {
  if (namespaces_) namespaces_->Stop();
  if (accounts_) accounts_->Stop();
}

void ServiceAccountController::Ensure(const std::string& ns) {
  auto namespace_object = store_.Get("namespaces", "", ns);
  // A namespace on its way out gets nothing new (its controller is emptying it).
  if (!namespace_object.ok() || (*namespace_object)["metadata"].contains("deletionTimestamp")) {
    return;
  }
  if (store_.Get("serviceaccounts", ns, "default").ok()) return;
  auto created = store_.Create("serviceaccounts", ns, {{"metadata", {{"name", "default"}}}});
  if (!created.ok() && created.status().code() != absl::StatusCode::kAlreadyExists) {
    LogWarn("serviceaccount controller: cannot create {}/default: {}", ns,
            std::string(created.status().message()));
  }
}

}  // namespace podlb::sandbox
