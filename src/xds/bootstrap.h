// The xDS bootstrap JSON a gRPC client reads from GRPC_XDS_BOOTSTRAP(_CONFIG) to find podlb's
// control plane. Pure function: callable from any thread.
#pragma once

#include <string>

namespace podlb::xds {

struct BootstrapOptions {
  std::string server;  // host:port of the control plane
  std::string node_id;
  std::string zone;    // node.locality.zone; may be empty but the locality is always present
  std::string region;
  bool tls = false;    // channel_creds "tls", then "google_default", instead of "insecure"
};

// Pretty-printed JSON. node.locality is always present: grpc-js-xds refuses a bootstrap
// without it. server_features asks for xds_v3 and ignore_resource_deletion (a client keeps a
// Listener or Cluster the server stops sending rather than failing its calls).
std::string BuildBootstrapJson(const BootstrapOptions& options);

}  // namespace podlb::xds
