// The xDS v3 type URLs podlb serves, and the short names used in logs and metrics.
// Constants only: usable from any thread.
#pragma once

#include <array>
#include <string_view>

namespace podlb::xds {

inline constexpr std::string_view kListenerType =
    "type.googleapis.com/envoy.config.listener.v3.Listener";
inline constexpr std::string_view kRouteConfigurationType =
    "type.googleapis.com/envoy.config.route.v3.RouteConfiguration";
inline constexpr std::string_view kClusterType =
    "type.googleapis.com/envoy.config.cluster.v3.Cluster";
inline constexpr std::string_view kClusterLoadAssignmentType =
    "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment";
inline constexpr std::string_view kHttpConnectionManagerType =
    "type.googleapis.com/"
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
inline constexpr std::string_view kRouterType =
    "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

// The four resource types in the order a client needs them (listener before route before
// cluster before endpoints), which is also the order a stream flushes pending pushes in.
enum class ResourceType { kListener = 0, kRouteConfiguration = 1, kCluster = 2,
                          kClusterLoadAssignment = 3 };
inline constexpr size_t kResourceTypeCount = 4;
inline constexpr std::array<ResourceType, kResourceTypeCount> kAllResourceTypes = {
    ResourceType::kListener, ResourceType::kRouteConfiguration, ResourceType::kCluster,
    ResourceType::kClusterLoadAssignment};

inline std::string_view TypeUrl(ResourceType type) {
  switch (type) {
    case ResourceType::kListener: return kListenerType;
    case ResourceType::kRouteConfiguration: return kRouteConfigurationType;
    case ResourceType::kCluster: return kClusterType;
    case ResourceType::kClusterLoadAssignment: return kClusterLoadAssignmentType;
  }
  return {};
}

inline std::string_view ShortName(ResourceType type) {
  switch (type) {
    case ResourceType::kListener: return "LDS";
    case ResourceType::kRouteConfiguration: return "RDS";
    case ResourceType::kCluster: return "CDS";
    case ResourceType::kClusterLoadAssignment: return "EDS";
  }
  return "?";
}

// False for a type URL podlb does not serve.
inline bool ParseTypeUrl(std::string_view url, ResourceType* type) {
  for (ResourceType t : kAllResourceTypes) {
    if (TypeUrl(t) == url) {
      *type = t;
      return true;
    }
  }
  return false;
}

// LDS and CDS are "full state" types: a response carries every subscribed resource, so one that
// is missing does not exist (xDS protocol). RDS and EDS responses carry only what exists.
inline bool IsFullStateType(ResourceType type) {
  return type == ResourceType::kListener || type == ResourceType::kCluster;
}

}  // namespace podlb::xds
