// XdsServer: the gRPC server that carries the AdsService, plaintext or TLS/mTLS (certificate
// files re-read periodically, so a rotated certificate needs no restart).
// Start/Stop/port from one control thread.
#pragma once

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "core/registry.h"
#include "grpcpp/server.h"
#include "xds/ads_service.h"

namespace podlb::xds {

struct XdsTlsOptions {
  std::string cert_file;  // empty: plaintext
  std::string key_file;
  std::string client_ca_file;  // non-empty: mTLS, client certificates required and verified
  int reload_interval_seconds = 60;
};

struct XdsServerOptions {
  std::string listen = "0.0.0.0:18000";
  XdsTlsOptions tls;
  AdsServiceOptions ads;
};

class XdsServer {
 public:
  XdsServer(Registry& registry, XdsServerOptions options);
  ~XdsServer();  // stops

  absl::Status Start();
  // Closes every stream (clients keep their resources and reconnect) and stops the service.
  void Stop();
  int port() const { return port_; }
  AdsService& service() { return *service_; }

 private:
  XdsServerOptions options_;
  std::unique_ptr<AdsService> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace podlb::xds
