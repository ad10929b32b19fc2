// AdminServer: the small HTTP/1.1 admin endpoint shared by the control plane and the proxy
// (/healthz, /readyz, /metrics, /debug/...). One accept thread and a short-lived thread per
// connection: admin traffic is rare and must never share the data path's event loops.
// Handlers run on connection threads and must be thread-safe. Start/Stop from one control thread.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"

namespace podlb {

struct AdminResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

// Receives the query string (after '?', may be empty).
using AdminHandler = std::function<AdminResponse(const std::string& query)>;

class AdminServer {
 public:
  AdminServer();
  ~AdminServer();  // stops

  // Registers a GET handler for an exact path. Call before Start().
  void Handle(const std::string& path, AdminHandler handler);

  // Binds host:port ("127.0.0.1:0" picks a port). Errors name the address and the cause.
  absl::Status Start(const std::string& host_port);
  void Stop();
  int port() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace podlb
