// Builders of the four xDS resources podlb serves, from one Service's EndpointSet and policy.
// Pure functions of their inputs (no I/O, no shared state): callable from any thread. The rules
// real clients enforce (they reject a whole response otherwise) are kept here, in one place:
// the router is the last HTTP filter, every locality carries a load_balancing_weight, priorities
// run 0..N without gaps, and addresses are unique IP literals.
#pragma once

#include <string>

#include "core/endpoint.h"
#include "envoy/config/cluster/v3/cluster.pb.h"
#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/config/listener/v3/listener.pb.h"
#include "envoy/config/route/v3/route.pb.h"
#include "xds/client_profile.h"

namespace podlb::xds {

// The name of the Cluster, RouteConfiguration and EDS resource of a Service port: its canonical
// key, "namespace/name:port". Listener names are whatever form the client dialed.
std::string ClusterNameFor(const ServiceKey& key);
// The Listener name podlb advertises to wildcard subscribers: "name.namespace:port".
std::string ListenerNameFor(const ServiceKey& key);

class RouteConfigurationBuilder {
 public:
  RouteConfigurationBuilder(std::string route_name, std::string cluster_name,
                            const ServicePolicy& policy, LbPolicy lb_policy)
      : route_name_(std::move(route_name)), cluster_name_(std::move(cluster_name)),
        policy_(policy), lb_policy_(lb_policy) {}
  envoy::config::route::v3::RouteConfiguration Build() const;

 private:
  std::string route_name_;
  std::string cluster_name_;
  const ServicePolicy& policy_;
  LbPolicy lb_policy_;
};

// A client-side API listener: an HttpConnectionManager with the route configuration inline
// (one round trip less than RDS, and every gRPC client accepts it) and the router filter.
class ListenerBuilder {
 public:
  ListenerBuilder(std::string listener_name, std::string cluster_name,
                  const ServicePolicy& policy, LbPolicy lb_policy)
      : listener_name_(std::move(listener_name)), cluster_name_(std::move(cluster_name)),
        policy_(policy), lb_policy_(lb_policy) {}
  envoy::config::listener::v3::Listener Build() const;

 private:
  std::string listener_name_;
  std::string cluster_name_;
  const ServicePolicy& policy_;
  LbPolicy lb_policy_;
};

class ClusterBuilder {
 public:
  ClusterBuilder(std::string cluster_name, const ServicePolicy& policy, LbPolicy lb_policy,
                 bool outlier_detection)
      : cluster_name_(std::move(cluster_name)), policy_(policy), lb_policy_(lb_policy),
        outlier_detection_(outlier_detection) {}
  envoy::config::cluster::v3::Cluster Build() const;

 private:
  std::string cluster_name_;
  const ServicePolicy& policy_;
  LbPolicy lb_policy_;
  bool outlier_detection_;
};

// Endpoints grouped into one locality per zone, weighted by their endpoints' weights. Ready
// endpoints are HEALTHY, terminating-but-serving ones DRAINING, the rest left out. With
// `client_zone` set (zone-aware Services), the client's zone is priority 0 and every other zone
// priority 1; when the client's zone has no endpoint, all zones are priority 0.
class ClusterLoadAssignmentBuilder {
 public:
  ClusterLoadAssignmentBuilder(std::string cluster_name, const EndpointSet& set,
                               std::string client_zone = {})
      : cluster_name_(std::move(cluster_name)), set_(set), client_zone_(std::move(client_zone)) {}
  envoy::config::endpoint::v3::ClusterLoadAssignment Build() const;

 private:
  std::string cluster_name_;
  const EndpointSet& set_;
  std::string client_zone_;
};

}  // namespace podlb::xds
