#include "sandbox/controllers/endpointslice_controller.h"

#include <algorithm>
#include <map>
#include <set>

#include "core/logging.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;

bool PodReady(const json& pod) {
  for (const auto& c : pod.value("status", json::object()).value("conditions", json::array())) {
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

// targetPort resolved against the pod: a number, a container port name, or the service port.
std::optional<int> ResolveTargetPort(const json& service_port, const json& pod) {
  json target = service_port.value("targetPort", json());
  if (target.is_number_integer()) return target.get<int>();
  if (target.is_string()) {
    std::string name = target.get<std::string>();
    if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) return std::stoi(name);
    for (const auto& c : pod.value("spec", json::object()).value("containers", json::array())) {
      for (const auto& p : c.value("ports", json::array())) {
        if (p.value("name", "") == name) return p.value("containerPort", 0);
      }
    }
    return std::nullopt;  // as upstream: a pod without the named port is not an endpoint for it
  }
  return service_port.value("port", 0);
}

json OwnerReference(const json& service) {
  const json& meta = service["metadata"];
  return json::array({{{"apiVersion", "v1"},
                       {"kind", "Service"},
                       {"name", meta.value("name", "")},
                       {"uid", meta.value("uid", "")},
                       {"controller", true},
                       {"blockOwnerDeletion", true}}});
}

json SliceLabels(const json& service, const std::string& name) {
  json labels = service["metadata"].value("labels", json::object());
  labels[kServiceNameLabel] = name;
  labels[kManagedByLabel] = kManagedByController;
  return labels;
}

std::string EndpointPodName(const json& endpoint) {
  return endpoint.value("targetRef", json::object()).value("name", "");
}

}  // namespace

EndpointSliceController::EndpointSliceController(ResourceStore& store,
                                                 EndpointSliceControllerOptions options)
    : store_(store), options_(std::move(options)) {}

EndpointSliceController::~EndpointSliceController() { Stop(); }

absl::Status EndpointSliceController::Start() {
  if (options_.max_endpoints_per_slice == 0) {
    return absl::InvalidArgumentError("endpointslice controller: max endpoints per slice is 0");
  }
  service_watch_ = std::make_unique<StoreWatch>(
      store_, "services", [this](const WatchEvent& event) { queue_.Add(ObjectKey(event.object)); });
  // A pod change can affect any service of its namespace; "ns/*" asks for all of them.
  pod_watch_ = std::make_unique<StoreWatch>(store_, "pods", [this](const WatchEvent& event) {
    queue_.Add(event.object["metadata"].value("namespace", "default") + "/*");
  });
  service_watch_->Start();
  pod_watch_->Start();
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void EndpointSliceController::Stop() {
  if (service_watch_) service_watch_->Stop();
  if (pod_watch_) pod_watch_->Stop();
  queue_.ShutDown();
  if (thread_.joinable()) thread_.join();
}

void EndpointSliceController::Run() {
  while (auto key = queue_.Get()) {
    auto [ns, name] = SplitObjectKey(*key);
    std::vector<std::string> names;
    if (name == "*") {
      for (const auto& svc : store_.List("services", ns, LabelSelector{}).items) {
        names.push_back(svc["metadata"].value("name", ""));
      }
    } else {
      names.push_back(name);
    }
    for (const auto& service : names) {
      absl::Status status;
      try {
        status = ReconcileService(ns, service);
      } catch (const std::exception& e) {
        status = absl::InternalError(e.what());
      }
      if (!status.ok()) {
        // Usually a conflict with another writer; the retry sees the newer objects.
        LogWarn("endpointslice controller: service {}/{}: {}; retrying", ns, service,
                std::string(status.message()));
        queue_.AddAfter(ns + "/" + service, std::chrono::milliseconds(100));
      }
    }
  }
}

absl::Status EndpointSliceController::ReconcileService(const std::string& ns,
                                                       const std::string& name) {
  auto service = store_.Get("services", ns, name);
  if (!service.ok()) {
    if (service.status().code() != absl::StatusCode::kNotFound) return service.status();
    auto deleted = store_.Delete("endpoints", ns, name);
    (void)deleted;  // absent already is fine
    return DeleteSlices(ns, name);
  }
  json selector = service->value("spec", json::object()).value("selector", json::object());
  if (!selector.is_object() || selector.empty()) {
    // Without a selector the user manages the endpoints; only our slices go.
    return DeleteSlices(ns, name);
  }
  std::string selector_text;
  for (const auto& [k, v] : selector.items()) {
    if (!selector_text.empty()) selector_text += ",";
    selector_text += k + "=" + (v.is_string() ? v.get<std::string>() : v.dump());
  }
  auto parsed = LabelSelector::Parse(selector_text);
  if (!parsed.ok()) return parsed.status();
  auto pods = store_.List("pods", ns, *parsed);
  std::vector<PodEndpoint> endpoints = SelectedEndpoints(ns, *service, pods.items);
  absl::Status slices = ReconcileSlices(ns, name, *service, endpoints);
  absl::Status legacy = ReconcileEndpoints(ns, name, *service, endpoints);
  return slices.ok() ? legacy : slices;
}

std::vector<EndpointSliceController::PodEndpoint> EndpointSliceController::SelectedEndpoints(
    const std::string& ns, const json& service, const std::vector<json>& pods) const {
  const json& spec = service["spec"];
  bool publish_not_ready = spec.value("publishNotReadyAddresses", false);
  std::vector<PodEndpoint> out;
  for (const auto& pod : pods) {
    const json& status = pod.value("status", json::object());
    std::string ip = status.value("podIP", "");
    std::string phase = status.value("phase", "");
    if (ip.empty() || phase == "Succeeded" || phase == "Failed") continue;
    PodEndpoint e;
    e.pod = pod["metadata"].value("name", "");
    e.ip = ip;
    e.terminating = pod["metadata"].contains("deletionTimestamp") &&
                    !pod["metadata"]["deletionTimestamp"].is_null();
    bool serving = PodReady(pod) || publish_not_ready;
    e.ready = serving && (!e.terminating || publish_not_ready);
    e.ports = json::array();
    bool unresolved = false;
    for (const auto& port : spec.value("ports", json::array())) {
      std::optional<int> target = ResolveTargetPort(port, pod);
      if (!target) {
        unresolved = true;
        continue;
      }
      e.ports.push_back({{"name", port.value("name", "")},
                         {"port", *target},
                         {"protocol", port.value("protocol", "TCP")}});
    }
    if (unresolved && e.ports.empty()) continue;
    std::string node = pod.value("spec", json::object()).value("nodeName", "");
    e.slice_endpoint = {
        {"addresses", json::array({ip})},
        {"conditions", {{"ready", e.ready}, {"serving", serving}, {"terminating", e.terminating}}},
        {"targetRef",
         {{"kind", "Pod"},
          {"namespace", ns},
          {"name", e.pod},
          {"uid", pod["metadata"].value("uid", "")}}}};
    if (!node.empty()) {
      e.slice_endpoint["nodeName"] = node;
      std::string zone = ZoneOfNode(options_.nodes, node);
      if (!zone.empty()) e.slice_endpoint["zone"] = zone;
    }
    out.push_back(std::move(e));
  }
  return out;
}

absl::Status EndpointSliceController::ReconcileSlices(const std::string& ns,
                                                      const std::string& name, const json& service,
                                                      const std::vector<PodEndpoint>& endpoints) {
  // Desired endpoints grouped by their resolved ports (one slice holds one port list).
  std::map<std::string, std::map<std::string, const PodEndpoint*>> desired;
  std::map<std::string, json> ports_of;
  for (const auto& e : endpoints) {
    std::string ports_key = e.ports.dump();
    desired[ports_key][e.pod] = &e;
    ports_of[ports_key] = e.ports;
  }
  auto selector = LabelSelector::Parse(std::string(kServiceNameLabel) + "=" + name + "," +
                                       kManagedByLabel + "=" + kManagedByController);
  if (!selector.ok()) return selector.status();
  std::vector<json> existing = store_.List("endpointslices", ns, *selector).items;
  std::sort(existing.begin(), existing.end(), [](const json& a, const json& b) {
    return a["metadata"].value("name", "") < b["metadata"].value("name", "");
  });

  struct Plan {
    const json* existing = nullptr;
    std::string ports_key;
    std::vector<const PodEndpoint*> endpoints;
  };
  std::vector<Plan> plans;
  std::set<std::string> placed;  // pod names (a pod has one port list)
  // Endpoints stay in the slice that holds them, so an unrelated change rewrites one slice.
  for (const auto& slice : existing) {
    Plan plan{&slice, slice.value("ports", json::array()).dump(), {}};
    auto group = desired.find(plan.ports_key);
    if (group != desired.end()) {
      for (const auto& ep : slice.value("endpoints", json::array())) {
        std::string pod = EndpointPodName(ep);
        auto it = group->second.find(pod);
        if (it != group->second.end() && !placed.count(pod) &&
            plan.endpoints.size() < options_.max_endpoints_per_slice) {
          plan.endpoints.push_back(it->second);
          placed.insert(pod);
        }
      }
    }
    plans.push_back(std::move(plan));
  }
  for (const auto& [ports_key, group] : desired) {
    for (const auto& [pod, endpoint] : group) {
      if (placed.count(pod)) continue;
      Plan* target = nullptr;
      for (auto& plan : plans) {
        if (plan.ports_key == ports_key &&
            plan.endpoints.size() < options_.max_endpoints_per_slice) {
          target = &plan;
          break;
        }
      }
      if (target == nullptr) {
        plans.push_back(Plan{nullptr, ports_key, {}});
        target = &plans.back();
      }
      target->endpoints.push_back(endpoint);
      placed.insert(pod);
    }
  }
  // A service with no endpoints keeps one empty slice, as upstream's placeholder slice.
  const Plan* placeholder = nullptr;
  if (endpoints.empty()) {
    if (plans.empty()) plans.push_back(Plan{nullptr, "[]", {}});
    placeholder = &plans.front();
  }

  // Write slices that gain ready endpoints before those that lose some: a reader following the
  // slices one event at a time (a rolling update: new pod ready in one slice, old pod
  // terminating in another) never sees fewer ready endpoints than there are.
  auto ready_delta = [](const Plan& plan) {
    int delta = 0;
    for (const PodEndpoint* e : plan.endpoints) delta += e->ready ? 1 : 0;
    if (plan.existing) {
      for (const auto& e : plan.existing->value("endpoints", json::array())) {
        delta -= e.value("conditions", json::object()).value("ready", false) ? 1 : 0;
      }
    }
    return delta;
  };
  std::vector<Plan*> order;
  for (auto& plan : plans) order.push_back(&plan);
  std::stable_sort(order.begin(), order.end(),
                   [&](Plan* a, Plan* b) { return ready_delta(*a) > ready_delta(*b); });

  std::vector<std::string> to_delete;
  for (Plan* plan_ptr : order) {
    Plan& plan = *plan_ptr;
    if (plan.endpoints.empty() && &plan != placeholder) {
      if (plan.existing) to_delete.push_back((*plan.existing)["metadata"].value("name", ""));
      continue;
    }
    std::sort(plan.endpoints.begin(), plan.endpoints.end(),
              [](const PodEndpoint* a, const PodEndpoint* b) { return a->pod < b->pod; });
    json object = plan.existing
                      ? *plan.existing
                      : json{{"apiVersion", "discovery.k8s.io/v1"},
                             {"kind", "EndpointSlice"},
                             {"metadata", {{"generateName", name + "-"}, {"namespace", ns}}}};
    object["metadata"]["labels"] = SliceLabels(service, name);
    object["metadata"]["ownerReferences"] = OwnerReference(service);
    object["addressType"] = "IPv4";
    object["ports"] = &plan == placeholder ? json::array() : ports_of[plan.ports_key];
    json list = json::array();
    for (const PodEndpoint* e : plan.endpoints) list.push_back(e->slice_endpoint);
    object["endpoints"] = list;
    if (plan.existing == nullptr) {
      auto created = store_.Create("endpointslices", ns, object);
      if (!created.ok()) return created.status();
    } else if (object != *plan.existing) {
      auto updated = store_.Update("endpointslices", ns, object);
      if (!updated.ok()) return updated.status();
    }
  }
  // Deletes last: endpoints moving between slices are briefly listed twice, never missing.
  for (const auto& slice : to_delete) {
    auto deleted = store_.Delete("endpointslices", ns, slice);
    if (!deleted.ok() && deleted.status().code() != absl::StatusCode::kNotFound) {
      return deleted.status();
    }
  }
  return absl::OkStatus();
}

absl::Status EndpointSliceController::ReconcileEndpoints(
    const std::string& ns, const std::string& name, const json& service,
    const std::vector<PodEndpoint>& endpoints) {
  // The endpoints controller: ready pods in addresses, not-ready ones in notReadyAddresses,
  // terminating ones left out; one subset per distinct port list.
  std::map<std::string, std::pair<std::vector<const PodEndpoint*>, std::vector<const PodEndpoint*>>>
      subsets;
  std::map<std::string, json> ports_of;
  for (const auto& e : endpoints) {
    if (e.terminating && !e.ready) continue;
    std::string key = e.ports.dump();
    ports_of[key] = e.ports;
    (e.ready ? subsets[key].first : subsets[key].second).push_back(&e);
  }
  auto address = [&](const PodEndpoint* e) {
    json a = {{"ip", e->ip}, {"targetRef", e->slice_endpoint["targetRef"]}};
    if (e->slice_endpoint.contains("nodeName")) a["nodeName"] = e->slice_endpoint["nodeName"];
    return a;
  };
  auto by_ip = [](const PodEndpoint* a, const PodEndpoint* b) { return a->ip < b->ip; };
  json subset_list = json::array();
  for (auto& [key, lists] : subsets) {
    json subset = json::object();
    for (auto* list : {&lists.first, &lists.second}) {
      std::sort(list->begin(), list->end(), by_ip);
      json addresses = json::array();
      for (const PodEndpoint* e : *list) addresses.push_back(address(e));
      if (!addresses.empty()) {
        subset[list == &lists.first ? "addresses" : "notReadyAddresses"] = addresses;
      }
    }
    json ports = json::array();
    for (const auto& p : ports_of[key]) {
      json port = {{"port", p["port"]}, {"protocol", p["protocol"]}};
      if (!p.value("name", "").empty()) port["name"] = p["name"];
      ports.push_back(port);
    }
    subset["ports"] = ports;
    subset_list.push_back(subset);
  }
  json labels = service["metadata"].value("labels", json::object());
  auto current = store_.Get("endpoints", ns, name);
  if (!current.ok()) {
    if (current.status().code() != absl::StatusCode::kNotFound) return current.status();
    json object = {{"apiVersion", "v1"},
                   {"kind", "Endpoints"},
                   {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}}};
    if (!subset_list.empty()) object["subsets"] = subset_list;
    return store_.Create("endpoints", ns, object).status();
  }
  json object = *current;
  object["metadata"]["labels"] = labels;
  if (subset_list.empty()) {
    object.erase("subsets");
  } else {
    object["subsets"] = subset_list;
  }
  if (object == *current) return absl::OkStatus();
  return store_.Update("endpoints", ns, object).status();
}

absl::Status EndpointSliceController::DeleteSlices(const std::string& ns, const std::string& name) {
  auto selector = LabelSelector::Parse(std::string(kServiceNameLabel) + "=" + name + "," +
                                       kManagedByLabel + "=" + kManagedByController);
  if (!selector.ok()) return selector.status();
  for (const auto& slice : store_.List("endpointslices", ns, *selector).items) {
    auto deleted = store_.Delete("endpointslices", ns, slice["metadata"].value("name", ""));
    if (!deleted.ok() && deleted.status().code() != absl::StatusCode::kNotFound) {
      return deleted.status();
    }
  }
  return absl::OkStatus();
}

}  // namespace podlb::sandbox
