// CompositeSource: several sources run as one (e.g. one KubernetesSource per namespace). Synced
// when all are; healthy when all are, else the first error. Same threading as its parts.
#pragma once

#include <memory>
#include <vector>

#include "discovery/source.h"

namespace podlb {

class CompositeSource : public EndpointSource {
 public:
  explicit CompositeSource(std::vector<std::unique_ptr<EndpointSource>> parts)
      : parts_(std::move(parts)) {}
  ~CompositeSource() override { Stop(); }

  absl::Status Start() override {
    for (auto& part : parts_) {
      if (auto status = part->Start(); !status.ok()) {
        Stop();
        return status;
      }
    }
    return absl::OkStatus();
  }
  void Stop() override {
    for (auto& part : parts_) part->Stop();
  }
  bool HasSynced() const override {
    for (const auto& part : parts_)
      if (!part->HasSynced()) return false;
    return true;
  }
  absl::Status Health() const override {
    for (const auto& part : parts_)
      if (auto status = part->Health(); !status.ok()) return status;
    return absl::OkStatus();
  }
  std::string Name() const override { return parts_.empty() ? "none" : parts_[0]->Name(); }

 private:
  std::vector<std::unique_ptr<EndpointSource>> parts_;
};

}  // namespace podlb
