#include "xds/bootstrap.h"

#include "nlohmann/json.hpp"

namespace podlb::xds {

std::string BuildBootstrapJson(const BootstrapOptions& options) {
  nlohmann::json server = {
      {"server_uri", options.server},
      {"channel_creds", nlohmann::json::array({{{"type", "insecure"}}})},
      {"server_features", nlohmann::json::array({"xds_v3", "ignore_resource_deletion"})}};
  if (options.tls) {
    // Clients take the first type they know (gRFC A27). "tls" (gRFC A65) is for current gRPC;
    // Debian's C-core 1.51 and grpc-js-xds 1.14 know only google_default, which is TLS with the
    // roots in GRPC_DEFAULT_SSL_ROOTS_FILE_PATH (plus a Google call credential podlb ignores).
    server["channel_creds"] = nlohmann::json::array(
        {{{"type", "tls"}, {"config", nlohmann::json::object()}}, {{"type", "google_default"}}});
  }
  nlohmann::json locality = nlohmann::json::object();
  locality["zone"] = options.zone;
  if (!options.region.empty()) locality["region"] = options.region;
  nlohmann::json bootstrap = {
      {"xds_servers", nlohmann::json::array({server})},
      {"node", {{"id", options.node_id}, {"locality", locality}}}};
  return bootstrap.dump(2);
}

}  // namespace podlb::xds
