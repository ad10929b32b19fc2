// XdsServer: serves the AdsService over gRPC's HTTP/2 protocol, plaintext or TLS/mTLS, on
// podlb's own HTTP/2 base: `workers` event loops, each accepting on its own SO_REUSEPORT socket
// and carrying its connections (AdsConnection) start to finish, so a push to 10,000 streams is
// two threads writing sockets, with no hand-off per stream. Certificate files are re-read every
// reload interval and a changed certificate or client CA applies to new connections without a
// restart (open streams keep theirs), as a Kubernetes Secret volume rotates them.
// Start/Stop/port from one control thread.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/registry.h"
#include "xds/ads_connection.h"
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
  // Event loops serving connections; 0: one per core.
  int workers = 0;
  AdsConnectionLimits limits;
};

class XdsServer {
 public:
  XdsServer(Registry& registry, XdsServerOptions options);
  ~XdsServer();  // stops

  absl::Status Start();
  // Ends every stream with UNAVAILABLE and GOAWAY (clients keep their resources and reconnect),
  // waits up to a second for them to go, and stops the service.
  void Stop();
  int port() const { return port_; }
  AdsService& service() { return *service_; }

 private:
  class Worker;
  // On the first worker's loop: re-reads the certificate files every reload interval; a changed
  // and valid set goes to every worker.
  void ScheduleTlsReload();
  void ReloadTls();

  XdsServerOptions options_;
  std::unique_ptr<AdsService> service_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::string tls_files_loaded_;  // the files' contents the workers' context was built from
  int port_ = 0;
};

}  // namespace podlb::xds
