#include "sandbox/controllers/event_recorder.h"

#include "absl/strings/str_cat.h"
#include "core/hash.h"
#include "core/logging.h"
#include "fmt/format.h"
#include "sandbox/controllers/store_watch.h"

namespace podlb::sandbox {

using json = nlohmann::json;

void RecordEvent(ResourceStore& store, const EventSource& source, const json& involved,
                 const std::string& type, const std::string& reason, const std::string& message,
                 const std::string& field_path) {
  const json& meta = involved.value("metadata", json::object());
  std::string ns = meta.value("namespace", "default");
  std::string name = meta.value("name", "");
  std::string uid = meta.value("uid", "");
  // One Event per object, source, reason and message: its name is derived from them, so a
  // repeat finds the Event to bump without a cache (the real recorder names events
  // NAME.<hex timestamp> and correlates in memory).
  uint64_t h = Fnv1a64(uid);
  for (const std::string* part : {&source.component, &type, &reason, &message, &field_path}) {
    h = Fnv1a64(*part, Mix64(h));
  }
  std::string event_name = fmt::format("{}.{:016x}", name, h);
  std::string now = NowRfc3339();

  auto bumped = MutateObject(store, "events", ns, event_name, [&](json& event) {
    event["count"] = event.value("count", 1) + 1;
    event["lastTimestamp"] = now;
    return true;
  });
  if (bumped.ok()) return;
  if (bumped.code() != absl::StatusCode::kNotFound) {
    LogWarn("events: cannot update event {}/{}: {}", ns, event_name, std::string(bumped.message()));
    return;
  }
  json involved_object = {{"kind", involved.value("kind", "")},
                          {"apiVersion", involved.value("apiVersion", "")},
                          {"namespace", ns},
                          {"name", name},
                          {"uid", uid}};
  if (meta.contains("resourceVersion"))
    involved_object["resourceVersion"] = meta["resourceVersion"];
  if (!field_path.empty()) involved_object["fieldPath"] = field_path;
  json source_json = {{"component", source.component}};
  if (!source.host.empty()) source_json["host"] = source.host;
  json event = {{"apiVersion", "v1"},
                {"kind", "Event"},
                {"metadata", {{"name", event_name}, {"namespace", ns}}},
                {"involvedObject", involved_object},
                {"reason", reason},
                {"message", message},
                {"source", source_json},
                {"firstTimestamp", now},
                {"lastTimestamp", now},
                {"count", 1},
                {"type", type},
                {"reportingComponent", source.component},
                {"reportingInstance", source.host}};
  auto created = store.Create("events", ns, event);
  if (!created.ok()) {
    LogWarn("events: cannot record {} {} about {}/{}: {}", type, reason, ns, name,
            std::string(created.status().message()));
  }
}

}  // namespace podlb::sandbox
