#include "sandbox/apiserver/object_defaults.h"

#include <string>

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

void SetIfAbsent(json& object, const char* key, json value) {
  if (!object.contains(key) || object[key].is_null()) object[key] = std::move(value);
}

// The job strategy's PrepareForCreate and generateSelector, and SetDefaults_Job.
void DefaultJob(json& job) {
  const std::string name = job["metadata"].value("name", "");
  const std::string uid = job["metadata"].value("uid", "");
  if (!job.contains("spec") || !job["spec"].is_object()) job["spec"] = json::object();
  json& spec = job["spec"];
  // Both unset: one pod, run to one success. Only parallelism set: a work queue, done when a
  // pod succeeds (completions stays unset).
  if (!spec.contains("completions") && !spec.contains("parallelism")) spec["completions"] = 1;
  SetIfAbsent(spec, "parallelism", 1);
  SetIfAbsent(spec, "backoffLimit", 6);
  SetIfAbsent(spec, "completionMode", "NonIndexed");
  SetIfAbsent(spec, "suspend", false);
  SetIfAbsent(spec, "podReplacementPolicy", "TerminatingOrFailed");
  job["status"] = json::object();  // a client cannot create a Job with a status
  if (spec.value("manualSelector", false) == true) return;
  json& template_meta = spec["template"]["metadata"];
  if (!template_meta.is_object()) template_meta = json::object();
  json& labels = template_meta["labels"];
  if (!labels.is_object()) labels = json::object();
  // A label the user set is kept; validation of the pods' selection then tells.
  SetIfAbsent(labels, kJobControllerUidLabel, uid);
  SetIfAbsent(labels, kJobNameLabel, name);
  SetIfAbsent(labels, kLegacyJobControllerUidLabel, uid);
  SetIfAbsent(labels, kLegacyJobNameLabel, name);
  // Since 1.27 the real server selects on the new label only; the legacy one is added here too
  // (the pods carry both), so a client selecting on either finds the same pods.
  spec["selector"] = {
      {"matchLabels", {{kJobControllerUidLabel, uid}, {kLegacyJobControllerUidLabel, uid}}}};
}

}  // namespace

void DefaultOnCreate(const ResourceType& type, json& object) {
  if (type.group == "batch" && type.resource == "jobs") DefaultJob(object);
}

}  // namespace podlb::sandbox
