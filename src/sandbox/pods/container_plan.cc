#include "sandbox/pods/container_plan.h"

#include <cmath>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

// The Node capacity the sandbox's Nodes report (seed_objects.cc): what resourceFieldRef gives for
// a limit the container does not set, as the kubelet gives the node's allocatable.
constexpr double kNodeCpuCores = 2;
constexpr double kNodeMemoryBytes = 4.0 * 1024 * 1024 * 1024;

std::string StringAt(const json& object, const char* key) {
  if (!object.is_object()) return "";
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

// metadata.labels['app'] -> ("labels", "app"); nullopt when `path` is not of that form.
std::optional<std::pair<std::string, std::string>> MapFieldPath(const std::string& path) {
  for (const char* map : {"labels", "annotations"}) {
    std::string prefix = absl::StrCat("metadata.", map, "['");
    if (path.starts_with(prefix) && path.ends_with("']")) {
      return std::make_pair(std::string(map),
                            path.substr(prefix.size(), path.size() - prefix.size() - 2));
    }
  }
  return std::nullopt;
}

absl::StatusOr<std::string> FieldRef(const json& pod, const std::string& path,
                                     const std::string& where) {
  const json& meta = pod.value("metadata", json::object());
  const json& spec = pod.value("spec", json::object());
  const json& status = pod.value("status", json::object());
  if (path == "metadata.name") return StringAt(meta, "name");
  if (path == "metadata.namespace") return StringAt(meta, "namespace");
  if (path == "metadata.uid") return StringAt(meta, "uid");
  if (path == "spec.nodeName") return StringAt(spec, "nodeName");
  if (path == "spec.serviceAccountName") {
    std::string account = StringAt(spec, "serviceAccountName");
    return account.empty() ? "default" : account;
  }
  if (path == "status.podIP" || path == "status.podIPs") return StringAt(status, "podIP");
  if (path == "status.hostIP" || path == "status.hostIPs") return StringAt(status, "hostIP");
  if (auto map = MapFieldPath(path)) {
    const json& values = meta.value(map->first, json::object());
    return StringAt(values, map->second.c_str());
  }
  return absl::InvalidArgumentError(absl::StrCat(
      where, ".valueFrom.fieldRef.fieldPath: Unsupported value: \"", path,
      "\": supported values: \"metadata.name\", \"metadata.namespace\", \"metadata.uid\", "
      "\"metadata.labels['<KEY>']\", \"metadata.annotations['<KEY>']\", \"spec.nodeName\", "
      "\"spec.serviceAccountName\", \"status.hostIP\", \"status.hostIPs\", \"status.podIP\", "
      "\"status.podIPs\""));
}

// A Kubernetes quantity ("100m", "64Mi", "1G", "2") as a number of units.
std::optional<double> ParseQuantity(const std::string& text) {
  static const std::vector<std::pair<std::string, double>> kSuffixes = {
      {"Ki", 1024.0},        {"Mi", 1024.0 * 1024},        {"Gi", 1024.0 * 1024 * 1024},
      {"Ti", 1099511627776}, {"m", 1e-3},                  {"k", 1e3},
      {"M", 1e6},            {"G", 1e9},                   {"T", 1e12}};
  for (const auto& [suffix, factor] : kSuffixes) {
    if (text.size() > suffix.size() && text.ends_with(suffix)) {
      double value;
      if (!absl::SimpleAtod(text.substr(0, text.size() - suffix.size()), &value)) return std::nullopt;
      return value * factor;
    }
  }
  double value;
  if (!absl::SimpleAtod(text, &value)) return std::nullopt;
  return value;
}

absl::StatusOr<std::string> ResourceFieldRef(const json& container, const json& ref,
                                             const std::string& where) {
  std::string resource = StringAt(ref, "resource");
  auto dot = resource.find('.');
  std::string kind = resource.substr(0, dot);  // limits / requests
  std::string name = dot == std::string::npos ? "" : resource.substr(dot + 1);
  if ((kind != "limits" && kind != "requests") || (name != "cpu" && name != "memory")) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".valueFrom.resourceFieldRef.resource: Unsupported value: \"", resource,
                     "\": supported values: \"limits.cpu\", \"limits.memory\", "
                     "\"requests.cpu\", \"requests.memory\""));
  }
  const json& resources = container.value("resources", json::object());
  std::string given = StringAt(resources.value(kind, json::object()), name.c_str());
  if (given.empty() && kind == "requests") {
    // An unset request defaults to the limit.
    given = StringAt(resources.value("limits", json::object()), name.c_str());
  }
  double value = name == "cpu" ? kNodeCpuCores : kNodeMemoryBytes;
  if (!given.empty()) {
    auto parsed = ParseQuantity(given);
    if (!parsed) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": resources.", kind, ".", name, ": invalid quantity \"", given, "\""));
    }
    value = *parsed;
  }
  double divisor = 1;
  if (ref.contains("divisor")) {
    std::string text = ref["divisor"].is_string() ? ref["divisor"].get<std::string>()
                                                  : ref["divisor"].dump();
    auto parsed = ParseQuantity(text);
    if (!parsed || *parsed <= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".valueFrom.resourceFieldRef.divisor: invalid quantity \"", text, "\""));
    }
    divisor = *parsed;
  }
  // The kubelet rounds up: a 100m limit is "1" CPU.
  return absl::StrCat(static_cast<int64_t>(std::ceil(value / divisor)));
}

// configMapKeyRef {name, key, optional}: nullopt for an optional key that is missing.
absl::StatusOr<std::optional<std::string>> ConfigMapKey(ResourceStore& store, const std::string& ns,
                                                        const json& ref, const std::string& where) {
  std::string name = StringAt(ref, "name");
  std::string key = StringAt(ref, "key");
  bool optional = ref.value("optional", false);
  auto map = store.Get("configmaps", ns, name);
  if (!map.ok()) {
    if (optional) return std::nullopt;
    return absl::NotFoundError(absl::StrCat(where, ": configmap \"", name, "\" not found"));
  }
  const json& data = map->value("data", json::object());
  if (!data.contains(key) || !data[key].is_string()) {
    if (optional) return std::nullopt;
    return absl::NotFoundError(
        absl::StrCat(where, ": couldn't find key ", key, " in ConfigMap ", ns, "/", name));
  }
  return data[key].get<std::string>();
}

absl::StatusOr<uint16_t> ProbePort(const json& container, const json& port,
                                   const std::string& where) {
  if (port.is_number_integer()) {
    int64_t value = port.get<int64_t>();
    if (value > 0 && value < 65536) return static_cast<uint16_t>(value);
  } else if (port.is_string()) {
    std::string name = port.get<std::string>();
    for (const auto& declared : container.value("ports", json::array())) {
      if (StringAt(declared, "name") == name) {
        int64_t value = declared.value("containerPort", int64_t{0});
        if (value > 0 && value < 65536) return static_cast<uint16_t>(value);
      }
    }
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".port: Invalid value: \"", name,
                     "\": must be a container port's name or a number"));
  }
  return absl::InvalidArgumentError(
      absl::StrCat(where, ".port: Invalid value: ", port.dump(), ": must be between 1 and 65535"));
}

std::chrono::milliseconds Seconds(const json& probe, const char* field, int64_t fallback,
                                  int64_t minimum) {
  return std::chrono::seconds(std::max(probe.value(field, fallback), minimum));
}

absl::StatusOr<std::optional<ProbeSpec>> PlanProbe(const json& container, const char* field,
                                                   const std::string& where_container) {
  if (!container.contains(field)) return std::nullopt;
  const json& probe = container[field];
  std::string where = absl::StrCat(where_container, ".", field);
  ProbeSpec spec;
  if (probe.contains("httpGet")) {
    const json& get = probe["httpGet"];
    std::string scheme = get.value("scheme", "HTTP");
    if (scheme != "HTTP") {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".httpGet.scheme: \"", scheme, "\" probes are not run by the sandbox (HTTP only)"));
    }
    spec.kind = ProbeSpec::Kind::kHttpGet;
    spec.path = get.value("path", "/");
    if (spec.path.empty() || spec.path[0] != '/') spec.path = "/" + spec.path;
    auto port = ProbePort(container, get.value("port", json()), where + ".httpGet");
    if (!port.ok()) return port.status();
    spec.port = *port;
  } else if (probe.contains("tcpSocket")) {
    spec.kind = ProbeSpec::Kind::kTcpSocket;
    auto port = ProbePort(container, probe["tcpSocket"].value("port", json()), where + ".tcpSocket");
    if (!port.ok()) return port.status();
    spec.port = *port;
  } else if (probe.contains("exec")) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".exec: podlb's image has no shell or other programs to exec"));
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": the sandbox runs httpGet and tcpSocket probes; this one has neither"));
  }
  spec.initial_delay = Seconds(probe, "initialDelaySeconds", 0, 0);
  spec.period = Seconds(probe, "periodSeconds", 10, 1);
  spec.timeout = Seconds(probe, "timeoutSeconds", 1, 1);
  spec.success_threshold = std::max(1, probe.value("successThreshold", 1));
  spec.failure_threshold = std::max(1, probe.value("failureThreshold", 3));
  return spec;
}

}  // namespace

std::string ExpandKubernetesVariables(std::string_view text,
                                      const std::map<std::string, std::string>& vars) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$' || i + 1 >= text.size()) {
      out.push_back(text[i]);
      continue;
    }
    if (text[i + 1] == '$') {
      out.push_back('$');
      ++i;
      continue;
    }
    size_t close = text[i + 1] == '(' ? text.find(')', i + 2) : std::string_view::npos;
    if (close == std::string_view::npos) {
      out.push_back('$');
      continue;
    }
    std::string name(text.substr(i + 2, close - i - 2));
    auto it = vars.find(name);
    out += it != vars.end() ? it->second : absl::StrCat("$(", name, ")");
    i = close;
  }
  return out;
}

absl::StatusOr<ContainerPlan> PlanContainer(const json& pod, const json& container,
                                            ResourceStore& store) {
  ContainerPlan plan;
  plan.name = StringAt(container, "name");
  const std::string ns = StringAt(pod.value("metadata", json::object()), "namespace");
  const std::string where = absl::StrCat("spec.containers[", plan.name, "]");

  std::map<std::string, std::string> vars;
  auto define = [&](const std::string& name, const std::string& value) {
    vars[name] = value;
    for (auto& entry : plan.env) {
      if (entry.substr(0, entry.find('=')) == name) {
        entry = name + "=" + value;
        return;
      }
    }
    plan.env.push_back(name + "=" + value);
  };
  // envFrom first: `env` entries win over them, as in Kubernetes.
  for (const auto& source : container.value("envFrom", json::array())) {
    if (!source.contains("configMapRef")) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ".envFrom: the sandbox reads configMapRef sources only"));
    }
    const json& ref = source["configMapRef"];
    auto map = store.Get("configmaps", ns, StringAt(ref, "name"));
    if (!map.ok()) {
      if (ref.value("optional", false)) continue;
      return absl::NotFoundError(absl::StrCat(where, ".envFrom: configmap \"",
                                              StringAt(ref, "name"), "\" not found"));
    }
    const json data = map->value("data", json::object());  // items() refers into it
    for (const auto& [key, value] : data.items()) {
      if (value.is_string()) define(source.value("prefix", "") + key, value.get<std::string>());
    }
  }
  for (const auto& entry : container.value("env", json::array())) {
    std::string name = StringAt(entry, "name");
    std::string at = absl::StrCat(where, ".env[", name, "]");
    if (entry.contains("valueFrom")) {
      const json& from = entry["valueFrom"];
      absl::StatusOr<std::string> value = absl::InvalidArgumentError(
          absl::StrCat(at, ".valueFrom: the sandbox reads fieldRef, resourceFieldRef and "
                           "configMapKeyRef"));
      if (from.contains("fieldRef")) {
        value = FieldRef(pod, StringAt(from["fieldRef"], "fieldPath"), at);
      } else if (from.contains("resourceFieldRef")) {
        value = ResourceFieldRef(container, from["resourceFieldRef"], at);
      } else if (from.contains("configMapKeyRef")) {
        auto key = ConfigMapKey(store, ns, from["configMapKeyRef"], at);
        if (!key.ok()) return key.status();
        if (!*key) continue;  // optional and missing: the variable is not set
        value = **key;
      }
      if (!value.ok()) return value.status();
      define(name, *value);
    } else {
      // A value may refer to variables defined before it.
      define(name, ExpandKubernetesVariables(StringAt(entry, "value"), vars));
    }
  }

  std::vector<std::string> words;
  const json& command = container.value("command", json::array());
  if (!command.empty()) {
    std::string entrypoint = command[0].is_string() ? command[0].get<std::string>() : "";
    if (entrypoint != "/podlb" && entrypoint != "podlb") {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".command: \"", entrypoint,
          "\" is not in podlb's image, whose only program is /podlb (leave command unset)"));
    }
    for (size_t i = 1; i < command.size(); ++i) {
      if (!command[i].is_string()) {
        return absl::InvalidArgumentError(
            absl::StrCat(where, ".command: every argument is a string"));
      }
      words.push_back(command[i].get<std::string>());
    }
  }
  for (const auto& arg : container.value("args", json::array())) {
    if (!arg.is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(where, ".args: every argument is a string"));
    }
    words.push_back(arg.get<std::string>());
  }
  for (const auto& word : words) plan.args.push_back(ExpandKubernetesVariables(word, vars));

  auto readiness = PlanProbe(container, "readinessProbe", where);
  if (!readiness.ok()) return readiness.status();
  plan.readiness = *readiness;
  auto liveness = PlanProbe(container, "livenessProbe", where);
  if (!liveness.ok()) return liveness.status();
  plan.liveness = *liveness;
  return plan;
}

}  // namespace podlb::sandbox
