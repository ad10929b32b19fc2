#include "xds/bootstrap.h"

#include "nlohmann/json.hpp"

namespace podlb::xds {

std::string BuildBootstrapJson(const BootstrapOptions& options) {
  nlohmann::json server = {
      {"server_uri", options.server},
      {"channel_creds", nlohmann::json::array({{{"type", options.tls ? "tls" : "insecure"}}})},
      {"server_features", nlohmann::json::array({"xds_v3", "ignore_resource_deletion"})}};
  if (options.tls) server["channel_creds"][0]["config"] = nlohmann::json::object();
  nlohmann::json locality = nlohmann::json::object();
  locality["zone"] = options.zone;
  if (!options.region.empty()) locality["region"] = options.region;
  nlohmann::json bootstrap = {
      {"xds_servers", nlohmann::json::array({server})},
      {"node", {{"id", options.node_id}, {"locality", locality}}}};
  return bootstrap.dump(2);
}

}  // namespace podlb::xds
