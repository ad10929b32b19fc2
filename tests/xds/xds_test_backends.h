// Test helpers for xDS integration tests: tiny grpc.testing.TestService backends on loopback
// addresses that answer with their own name, and a YAML writer for the file source. Header-only;
// used from a test's main thread (the servers run their own gRPC threads).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "grpc/testing/test.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace podlb::testing {

class NamedBackend final : public grpc::testing::TestService::Service {
 public:
  NamedBackend(std::string name, const std::string& address) : name_(std::move(name)) {
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address + ":0", grpc::InsecureServerCredentials(), &port_);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~NamedBackend() override { server_->Shutdown(); }
  int port() const { return port_; }
  const std::string& name() const { return name_; }

  grpc::Status UnaryCall(grpc::ServerContext*, const grpc::testing::SimpleRequest*,
                         grpc::testing::SimpleResponse* response) override {
    response->set_hostname(name_);
    return grpc::Status::OK;
  }

 private:
  std::string name_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

struct FileEndpoint {
  std::string address;
  int port;
  std::string pod;
  std::string zone = "z1";
};

// One Service per entry of the endpoints-file format (see discovery/file/endpoints_file.h).
struct FileServiceSpec {
  std::string key;  // e.g. default/greeter:50051
  std::map<std::string, std::string> annotations;
  std::vector<FileEndpoint> endpoints;
};

inline std::string EndpointsYaml(const std::vector<FileServiceSpec>& services) {
  std::string out = "services:\n";
  for (const auto& s : services) {
    out += "  - service: " + s.key + "\n";
    if (!s.annotations.empty()) {
      out += "    annotations:\n";
      for (const auto& [k, v] : s.annotations) out += "      \"" + k + "\": \"" + v + "\"\n";
    }
    out += "    endpoints:\n";
    if (s.endpoints.empty()) out.replace(out.size() - 1, 1, " []\n");
    for (const auto& e : s.endpoints) {
      out += "      - {address: " + e.address + ", port: " + std::to_string(e.port) +
             ", pod: " + e.pod + ", zone: " + e.zone + "}\n";
    }
  }
  return out;
}

}  // namespace podlb::testing
