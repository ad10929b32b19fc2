// What the real API server fills in when an object is created, after it has its uid (the
// registry strategies' PrepareForCreate and the defaulting functions): today batch/v1 Jobs, whose
// selector and pod labels name the Job's uid. The store runs it on every create. Pure, any thread.
#pragma once

#include "nlohmann/json.hpp"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

// The labels a Job's pods carry and its generated selector selects on.
inline constexpr char kJobControllerUidLabel[] = "batch.kubernetes.io/controller-uid";
inline constexpr char kJobNameLabel[] = "batch.kubernetes.io/job-name";
inline constexpr char kLegacyJobControllerUidLabel[] = "controller-uid";
inline constexpr char kLegacyJobNameLabel[] = "job-name";

// Fills `object` (of `type`, with metadata.name and metadata.uid set) as the real server would.
void DefaultOnCreate(const ResourceType& type, nlohmann::json& object);

}  // namespace podlb::sandbox
