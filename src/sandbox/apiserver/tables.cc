#include "sandbox/apiserver/tables.h"

#include <cctype>
#include <ctime>
#include <optional>

#include "absl/strings/str_join.h"
#include "fmt/format.h"
#include "sandbox/apiserver/json_path.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

std::string Str(const json& value, const std::string& fallback) {
  if (value.is_string() && !value.get<std::string>().empty()) return value.get<std::string>();
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  return fallback;
}

int64_t Int(const json& value) { return value.is_number_integer() ? value.get<int64_t>() : 0; }

// How long ago an RFC 3339 timestamp was, as kubectl prints ages.
std::string Since(const json& timestamp) {
  std::string created = Str(timestamp, "");
  std::tm tm{};
  if (created.empty() || strptime(created.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) {
    return "<unknown>";
  }
  int64_t seconds = std::max<int64_t>(0, std::time(nullptr) - timegm(&tm));
  if (seconds < 120) return fmt::format("{}s", seconds);
  if (seconds < 120 * 60) return fmt::format("{}m", seconds / 60);
  if (seconds < 48 * 3600) return fmt::format("{}h", seconds / 3600);
  return fmt::format("{}d", seconds / 86400);
}

// Seconds since the epoch of an RFC 3339 timestamp, or nullopt.
std::optional<int64_t> EpochSeconds(const json& timestamp) {
  std::string text = Str(timestamp, "");
  std::tm tm{};
  if (text.empty() || strptime(text.c_str(), "%Y-%m-%dT%H:%M:%SZ", &tm) == nullptr) {
    return std::nullopt;
  }
  return static_cast<int64_t>(timegm(&tm));
}

// apimachinery's duration.HumanDuration, as kubectl prints a Job's DURATION.
std::string HumanDuration(int64_t seconds) {
  if (seconds < 0) return "0s";
  if (seconds < 120) return fmt::format("{}s", seconds);
  int64_t minutes = seconds / 60;
  if (minutes < 10) {
    return seconds % 60 == 0 ? fmt::format("{}m", minutes)
                             : fmt::format("{}m{}s", minutes, seconds % 60);
  }
  if (minutes < 180) return fmt::format("{}m", minutes);
  int64_t hours = minutes / 60;
  if (hours < 8) {
    return minutes % 60 == 0 ? fmt::format("{}h", hours) : fmt::format("{}h{}m", hours, minutes % 60);
  }
  if (hours < 48) return fmt::format("{}h", hours);
  if (hours < 24 * 8) {
    return hours % 24 == 0 ? fmt::format("{}d", hours / 24)
                           : fmt::format("{}d{}h", hours / 24, hours % 24);
  }
  return fmt::format("{}d", hours / 24);
}

bool HasTrueCondition(const json& object, const std::string& type) {
  const json& conditions = At(object, {"status", "conditions"});
  if (!conditions.is_array()) return false;
  for (const auto& c : conditions) {
    if (At(c, {"type"}) == type && At(c, {"status"}) == "True") return true;
  }
  return false;
}

std::string Age(const json& object) { return Since(At(object, {"metadata", "creationTimestamp"})); }

json Column(const char* name, const char* type, const char* format = "") {
  return {{"name", name}, {"type", type}, {"format", format}, {"description", ""}, {"priority", 0}};
}

struct Printer {
  std::vector<json> columns;  // between Name and Age
  std::function<std::vector<json>(const json&)> cells;
};

Printer PrinterFor(const std::string& resource) {
  if (resource == "services") {
    return {{Column("Type", "string"), Column("Cluster-IP", "string"),
             Column("External-IP", "string"), Column("Port(s)", "string")},
            [](const json& o) {
              std::vector<std::string> ports;
              const json& list = At(o, {"spec", "ports"});
              if (list.is_array()) {
                for (const auto& p : list) {
                  ports.push_back(Str(At(p, {"port"}), "") + "/" + Str(At(p, {"protocol"}), "TCP"));
                }
              }
              return std::vector<json>{Str(At(o, {"spec", "type"}), "ClusterIP"),
                                       Str(At(o, {"spec", "clusterIP"}), "<none>"), "<none>",
                                       ports.empty() ? "<none>" : absl::StrJoin(ports, ",")};
            }};
  }
  if (resource == "endpointslices") {
    return {
        {Column("AddressType", "string"), Column("Ports", "string"), Column("Endpoints", "string")},
        [](const json& o) {
          std::vector<std::string> ports, addresses;
          const json& plist = At(o, {"ports"});
          if (plist.is_array()) {
            for (const auto& p : plist) ports.push_back(Str(At(p, {"port"}), "<unset>"));
          }
          const json& eps = At(o, {"endpoints"});
          if (eps.is_array()) {
            for (const auto& e : eps) {
              const json& addrs = At(e, {"addresses"});
              if (addrs.is_array() && !addrs.empty()) addresses.push_back(Str(addrs[0], ""));
            }
          }
          std::string shown = absl::StrJoin(
              addresses.begin(), addresses.begin() + std::min<size_t>(3, addresses.size()), ",");
          if (addresses.size() > 3) shown += fmt::format(" + {} more...", addresses.size() - 3);
          return std::vector<json>{Str(At(o, {"addressType"}), "IPv4"),
                                   ports.empty() ? "<unset>" : absl::StrJoin(ports, ","),
                                   addresses.empty() ? "<unset>" : shown};
        }};
  }
  if (resource == "deployments") {
    return {{Column("Ready", "string"), Column("Up-to-date", "integer"),
             Column("Available", "integer")},
            [](const json& o) {
              int64_t want = At(o, {"spec", "replicas"}).is_number_integer()
                                 ? Int(At(o, {"spec", "replicas"}))
                                 : 1;
              return std::vector<json>{
                  fmt::format("{}/{}", Int(At(o, {"status", "readyReplicas"})), want),
                  Int(At(o, {"status", "updatedReplicas"})),
                  Int(At(o, {"status", "availableReplicas"}))};
            }};
  }
  if (resource == "daemonsets") {
    return {{Column("Desired", "integer"), Column("Current", "integer"), Column("Ready", "integer"),
             Column("Up-to-date", "integer"), Column("Available", "integer"),
             Column("Node Selector", "string")},
            [](const json& o) {
              std::vector<std::string> selector;
              const json& terms = At(o, {"spec", "template", "spec", "nodeSelector"});
              if (terms.is_object()) {
                for (const auto& [key, value] : terms.items()) {
                  selector.push_back(key + "=" + Str(value, ""));
                }
              }
              return std::vector<json>{Int(At(o, {"status", "desiredNumberScheduled"})),
                                       Int(At(o, {"status", "currentNumberScheduled"})),
                                       Int(At(o, {"status", "numberReady"})),
                                       Int(At(o, {"status", "updatedNumberScheduled"})),
                                       Int(At(o, {"status", "numberAvailable"})),
                                       selector.empty() ? "<none>" : absl::StrJoin(selector, ",")};
            }};
  }
  if (resource == "jobs") {
    // kubectl 1.32's columns (pkg/printers/internalversion printJob).
    return {{Column("Status", "string"), Column("Completions", "string"),
             Column("Duration", "string")},
            [](const json& o) {
              std::string completions;
              int64_t succeeded = Int(At(o, {"status", "succeeded"}));
              const json& want = At(o, {"spec", "completions"});
              int64_t parallelism = Int(At(o, {"spec", "parallelism"}));
              if (want.is_number_integer()) {
                completions = fmt::format("{}/{}", succeeded, want.get<int64_t>());
              } else if (parallelism > 1) {
                completions = fmt::format("{}/1 of {}", succeeded, parallelism);
              } else {
                completions = fmt::format("{}/1", succeeded);
              }
              std::string duration;
              auto start = EpochSeconds(At(o, {"status", "startTime"}));
              auto end = EpochSeconds(At(o, {"status", "completionTime"}));
              if (start) duration = HumanDuration((end ? *end : std::time(nullptr)) - *start);
              std::string status = "Running";
              if (HasTrueCondition(o, "Complete")) {
                status = "Complete";
              } else if (HasTrueCondition(o, "Failed")) {
                status = "Failed";
              } else if (!At(o, {"metadata", "deletionTimestamp"}).is_null()) {
                status = "Terminating";
              } else if (HasTrueCondition(o, "Suspended")) {
                status = "Suspended";
              } else if (HasTrueCondition(o, "FailureTarget")) {
                status = "FailureTarget";
              } else if (HasTrueCondition(o, "SuccessCriteriaMet")) {
                status = "SuccessCriteriaMet";
              }
              return std::vector<json>{status, completions, duration};
            }};
  }
  if (resource == "events") {
    return {{Column("Last Seen", "string"), Column("Type", "string"), Column("Reason", "string"),
             Column("Object", "string"), Column("Message", "string")},
            [](const json& o) {
              std::string kind = Str(At(o, {"involvedObject", "kind"}), "");
              for (auto& c : kind) c = static_cast<char>(std::tolower(c));
              return std::vector<json>{Since(At(o, {"lastTimestamp"})), Str(At(o, {"type"}), ""),
                                       Str(At(o, {"reason"}), ""),
                                       kind + "/" + Str(At(o, {"involvedObject", "name"}), ""),
                                       Str(At(o, {"message"}), "")};
            }};
  }
  if (resource == "pods") {
    return {{Column("Ready", "string"), Column("Status", "string"), Column("Restarts", "string"),
             Column("IP", "string"), Column("Node", "string")},
            [](const json& o) {
              const json& containers = At(o, {"spec", "containers"});
              const json& statuses = At(o, {"status", "containerStatuses"});
              int64_t ready = 0, restarts = 0;
              // The STATUS kubectl shows: a container's waiting or terminated reason
              // (CrashLoopBackOff, ErrImageNeverPull) over the phase, and Terminating once
              // deleted, as the real server's printer does.
              std::string status = Str(At(o, {"status", "phase"}), "Pending");
              if (statuses.is_array()) {
                for (const auto& s : statuses) {
                  ready += At(s, {"ready"}) == true ? 1 : 0;
                  restarts += Int(At(s, {"restartCount"}));
                  std::string reason = Str(At(s, {"state", "waiting", "reason"}), "");
                  if (reason.empty()) reason = Str(At(s, {"state", "terminated", "reason"}), "");
                  // ContainerCreating: the phase (Pending) says as much.
                  if (!reason.empty() && reason != "ContainerCreating") status = reason;
                }
              }
              if (!At(o, {"metadata", "deletionTimestamp"}).is_null()) status = "Terminating";
              return std::vector<json>{
                  fmt::format("{}/{}", ready, containers.is_array() ? containers.size() : 0),
                  status, restarts, Str(At(o, {"status", "podIP"}), "<none>"),
                  Str(At(o, {"spec", "nodeName"}), "<none>")};
            }};
  }
  if (resource == "namespaces") {
    return {{Column("Status", "string")}, [](const json& o) {
              return std::vector<json>{Str(At(o, {"status", "phase"}), "Active")};
            }};
  }
  return {{}, [](const json&) { return std::vector<json>{}; }};
}

}  // namespace

json ToTable(const ResourceType& type, const std::vector<json>& objects, bool with_columns,
             const std::string& resource_version) {
  Printer printer = PrinterFor(type.resource);
  json table = {{"kind", "Table"}, {"apiVersion", "meta.k8s.io/v1"}, {"metadata", json::object()}};
  if (!resource_version.empty()) table["metadata"]["resourceVersion"] = resource_version;
  json columns = json::array();
  if (with_columns) {
    columns.push_back(Column("Name", "string", "name"));
    for (const auto& c : printer.columns) columns.push_back(c);
    columns.push_back(Column("Age", "string"));
  }
  table["columnDefinitions"] = columns;
  json rows = json::array();
  for (const auto& object : objects) {
    json cells = json::array();
    cells.push_back(Str(At(object, {"metadata", "name"}), ""));
    for (auto& cell : printer.cells(object)) cells.push_back(std::move(cell));
    cells.push_back(Age(object));
    rows.push_back({{"cells", cells},
                    {"object",
                     {{"kind", "PartialObjectMetadata"},
                      {"apiVersion", "meta.k8s.io/v1"},
                      {"metadata", At(object, {"metadata"})}}}});
  }
  table["rows"] = rows;
  return table;
}

}  // namespace podlb::sandbox
