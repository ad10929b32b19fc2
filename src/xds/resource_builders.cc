#include "xds/resource_builders.h"

#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "envoy/extensions/filters/http/router/v3/router.pb.h"
#include "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.pb.h"
#include "google/protobuf/util/time_util.h"

namespace podlb::xds {

namespace hcm = envoy::extensions::filters::network::http_connection_manager::v3;
using envoy::config::cluster::v3::Cluster;
using envoy::config::endpoint::v3::ClusterLoadAssignment;
using google::protobuf::util::TimeUtil;

namespace {

google::protobuf::Duration ToProto(absl::Duration d) {
  return TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
}

}  // namespace

std::string ClusterNameFor(const ServiceKey& key) { return key.ToString(); }

std::string ListenerNameFor(const ServiceKey& key) {
  return absl::StrCat(key.name, ".", key.ns, ":", key.port);
}

envoy::config::route::v3::RouteConfiguration RouteConfigurationBuilder::Build() const {
  envoy::config::route::v3::RouteConfiguration config;
  config.set_name(route_name_);
  auto* vhost = config.add_virtual_hosts();
  vhost->set_name(cluster_name_);
  // gRPC matches the virtual host against the dialed authority, which may be any of the name
  // forms a Service has; "*" matches them all and nothing else shares this route table.
  vhost->mutable_domains()->Add(std::string(1, '*'));
  auto* route = vhost->add_routes();
  route->mutable_match()->set_prefix("");
  auto* action = route->mutable_route();
  action->set_cluster(cluster_name_);
  if (policy_.timeout) {
    // gRPC clients read max_stream_duration (gRFC A31); Envoy reads timeout. Set both.
    *action->mutable_timeout() = ToProto(*policy_.timeout);
    *action->mutable_max_stream_duration()->mutable_max_stream_duration() =
        ToProto(*policy_.timeout);
  }
  if (lb_policy_ == LbPolicy::kRingHash) {
    action->add_hash_policy()->mutable_header()->set_header_name(policy_.hash_header);
  }
  if (policy_.retries_on_unavailable > 0) {
    auto* retry = action->mutable_retry_policy();
    retry->set_retry_on("unavailable");
    retry->mutable_num_retries()->set_value(policy_.retries_on_unavailable);
    *retry->mutable_retry_back_off()->mutable_base_interval() = ToProto(absl::Milliseconds(25));
    *retry->mutable_retry_back_off()->mutable_max_interval() = ToProto(absl::Milliseconds(250));
  }
  return config;
}

envoy::config::listener::v3::Listener ListenerBuilder::Build() const {
  hcm::HttpConnectionManager manager;
  manager.set_stat_prefix(listener_name_);
  *manager.mutable_route_config() =
      RouteConfigurationBuilder(cluster_name_, cluster_name_, policy_, lb_policy_).Build();
  // The router must be the last filter: gRPC clients NACK a listener whose chain ends otherwise.
  auto* router = manager.add_http_filters();
  router->set_name("envoy.filters.http.router");
  router->mutable_typed_config()->PackFrom(envoy::extensions::filters::http::router::v3::Router());

  envoy::config::listener::v3::Listener listener;
  listener.set_name(listener_name_);
  listener.mutable_api_listener()->mutable_api_listener()->PackFrom(manager);
  return listener;
}

Cluster ClusterBuilder::Build() const {
  Cluster cluster;
  cluster.set_name(cluster_name_);
  cluster.set_type(Cluster::EDS);
  auto* eds = cluster.mutable_eds_cluster_config();
  eds->mutable_eds_config()->mutable_ads();
  eds->mutable_eds_config()->set_resource_api_version(envoy::config::core::v3::V3);
  eds->set_service_name(cluster_name_);
  *cluster.mutable_connect_timeout() = ToProto(absl::Seconds(5));
  switch (lb_policy_) {
    case LbPolicy::kRoundRobin:
      cluster.set_lb_policy(Cluster::ROUND_ROBIN);
      break;
    case LbPolicy::kRingHash: {
      cluster.set_lb_policy(Cluster::RING_HASH);
      auto* ring = cluster.mutable_ring_hash_lb_config();
      ring->set_hash_function(Cluster::RingHashLbConfig::XX_HASH);
      ring->mutable_minimum_ring_size()->set_value(1024);
      ring->mutable_maximum_ring_size()->set_value(8 * 1024 * 1024);  // gRPC's cap (gRFC A42)
      break;
    }
    case LbPolicy::kLeastRequest:
      cluster.set_lb_policy(Cluster::LEAST_REQUEST);
      cluster.mutable_least_request_lb_config()->mutable_choice_count()->set_value(2);
      break;
  }
  const balancing::OutlierPolicy& outlier = policy_.outlier;
  if (outlier_detection_ && outlier.enabled) {
    // Failure-percentage ejection (gRFC A50): a pod failing failure_percentage of its calls in
    // one interval, once it had minimum_requests, is ejected at the interval's end. gRPC
    // clients evaluate only then, so the interval bounds how fast they react (the proxy and the
    // library eject on the failing call itself). Success-rate ejection is disabled explicitly
    // because its default is on; consecutive_5xx is for Envoy (gRPC ignores it).
    auto* od = cluster.mutable_outlier_detection();
    *od->mutable_interval() = ToProto(outlier.interval);
    *od->mutable_base_ejection_time() = ToProto(outlier.base_ejection);
    *od->mutable_max_ejection_time() = ToProto(outlier.max_ejection);
    od->mutable_max_ejection_percent()->set_value(outlier.max_ejection_percent);
    od->mutable_enforcing_success_rate()->set_value(0);
    const bool by_percentage = outlier.failure_percentage > 0;
    od->mutable_failure_percentage_threshold()->set_value(by_percentage ? outlier.failure_percentage : 100);
    od->mutable_enforcing_failure_percentage()->set_value(by_percentage ? 100 : 0);
    od->mutable_failure_percentage_minimum_hosts()->set_value(3);
    od->mutable_failure_percentage_request_volume()->set_value(outlier.minimum_requests);
    if (outlier.consecutive_failures > 0) {
      od->mutable_consecutive_5xx()->set_value(outlier.consecutive_failures);
      od->mutable_enforcing_consecutive_5xx()->set_value(100);
    } else {
      od->mutable_enforcing_consecutive_5xx()->set_value(0);
    }
  }
  return cluster;
}

ClusterLoadAssignment ClusterLoadAssignmentBuilder::Build() const {
  ClusterLoadAssignment assignment;
  assignment.set_cluster_name(cluster_name_);

  // One locality per priority, not one per zone: gRPC picks between the localities of a
  // priority at random (weighted_target), which skews a small Service by 10-20 %; within one
  // locality round robin is exact. Zones only decide the priority, and only for zone-aware
  // variants (client_zone_ set): the client's zone at 0, every other zone at 1.
  struct Locality {
    std::string zone;
    std::vector<const Endpoint*> endpoints;
    uint64_t weight = 0;
  };
  std::vector<const Endpoint*> usable;
  std::set<std::string> seen;  // unique host:port (a client rejects duplicates)
  bool client_zone_has_endpoints = false;
  for (const Endpoint& endpoint : set_.endpoints()) {
    if (endpoint.Health() == EndpointHealth::kExcluded) continue;
    if (!seen.insert(endpoint.HostPort()).second) continue;
    usable.push_back(&endpoint);
    if (!client_zone_.empty() && endpoint.zone == client_zone_) client_zone_has_endpoints = true;
  }
  bool split = false;
  for (const Endpoint* endpoint : usable) {
    if (client_zone_has_endpoints && endpoint->zone != client_zone_) split = true;
  }
  std::vector<Locality> by_priority(split ? 2 : 1);
  if (split) by_priority[0].zone = client_zone_;
  for (const Endpoint* endpoint : usable) {
    Locality& locality = by_priority[split && endpoint->zone != client_zone_ ? 1 : 0];
    locality.endpoints.push_back(endpoint);
    locality.weight += std::max<uint32_t>(endpoint->weight, 1);
  }
  for (size_t priority = 0; priority < by_priority.size(); ++priority) {
    const Locality& locality = by_priority[priority];
    if (locality.endpoints.empty()) continue;
    auto* out = assignment.add_endpoints();
    out->mutable_locality()->set_zone(locality.zone);
    // A locality without a weight is silently ignored by gRPC clients; a zero weight too.
    out->mutable_load_balancing_weight()->set_value(
        static_cast<uint32_t>(std::min<uint64_t>(std::max<uint64_t>(locality.weight, 1),
                                                 UINT32_MAX)));
    out->set_priority(static_cast<uint32_t>(priority));
    for (const Endpoint* endpoint : locality.endpoints) {
      auto* lb = out->add_lb_endpoints();
      auto* socket = lb->mutable_endpoint()->mutable_address()->mutable_socket_address();
      socket->set_address(endpoint->address);
      socket->set_port_value(endpoint->port);
      lb->mutable_endpoint()->set_hostname(endpoint->pod_name);
      lb->set_health_status(endpoint->Health() == EndpointHealth::kEligible
                                ? envoy::config::core::v3::HEALTHY
                                : envoy::config::core::v3::DRAINING);
      lb->mutable_load_balancing_weight()->set_value(std::max<uint32_t>(endpoint->weight, 1));
    }
  }
  return assignment;
}

}  // namespace podlb::xds
