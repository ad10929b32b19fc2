// Test helpers for the proxy tests: an in-process grpc++ TestService "pod" bound to a loopback
// address (hostname = its name), and a client stub factory. Test thread only (the server runs
// its own grpc threads).
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "core/endpoint.h"
#include "grpc/testing/test.grpc.pb.h"

namespace podlb::testing {

class TestBackend final : public grpc::testing::TestService::Service {
 public:
  // `address` like "127.0.0.2"; picks a free port. `credentials` null: plaintext (h2c).
  TestBackend(std::string name, std::string address, int max_concurrent_streams = 0,
              std::shared_ptr<grpc::ServerCredentials> credentials = nullptr)
      : name_(std::move(name)), address_(std::move(address)) {
    grpc::EnableDefaultHealthCheckService(true);  // grpc.health.v1, SERVING until told otherwise
    grpc::ServerBuilder builder;
    builder.AddListeningPort(address_ + ":0",
                             credentials ? credentials : grpc::InsecureServerCredentials(), &port_);
    if (max_concurrent_streams > 0)
      builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, max_concurrent_streams);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
  }
  ~TestBackend() override { Kill(); }

  // Stops at once: in-flight calls are cancelled, the port closes.
  void Kill() {
    if (server_) {
      server_->Shutdown(std::chrono::system_clock::now());
      server_->Wait();
      server_.reset();
    }
  }

  // From now on every TestService call ends with `code` (OK: answer normally again). Unary calls
  // fail without a message (a trailers-only response); server streams send their messages first.
  void FailEveryCall(grpc::StatusCode code) { fail_with_ = code; }

  // grpc.health.v1 status of every service ("" included).
  void SetServing(bool serving) { server_->GetHealthCheckService()->SetServingStatus(serving); }

  Endpoint AsEndpoint(std::string zone = "") const {
    Endpoint e;
    e.address = address_;
    e.port = static_cast<uint16_t>(port_);
    e.pod_name = name_;
    e.zone = std::move(zone);
    e.ready = true;
    e.serving = true;
    return e;
  }
  int port() const { return port_; }
  const std::string& name() const { return name_; }
  int calls() const { return calls_.load(); }
  int64_t bytes_written() const { return bytes_written_.load(); }
  int cancelled() const { return cancelled_.load(); }
  int output_streams() const { return output_streams_.load(); }

  // Unary: hostname = name. fill_username=true makes it wait until the call is cancelled.
  grpc::Status UnaryCall(grpc::ServerContext* context, const grpc::testing::SimpleRequest* request,
                         grpc::testing::SimpleResponse* response) override {
    ++calls_;
    if (fail_with_ != grpc::StatusCode::OK) return grpc::Status(fail_with_, name_ + " fails");
    if (request->fill_username()) {
      while (!context->IsCancelled()) std::this_thread::sleep_for(std::chrono::milliseconds(5));
      ++cancelled_;
      return grpc::Status::CANCELLED;
    }
    response->set_hostname(name_);
    response->mutable_payload()->set_body(std::string(request->response_size(), 'x'));
    if (request->has_response_status() && request->response_status().code() != 0)
      return grpc::Status(static_cast<grpc::StatusCode>(request->response_status().code()),
                          request->response_status().message());
    return grpc::Status::OK;
  }

  // Server streaming: one message per response_parameters entry (size, interval_us).
  grpc::Status StreamingOutputCall(
      grpc::ServerContext* context, const grpc::testing::StreamingOutputCallRequest* request,
      grpc::ServerWriter<grpc::testing::StreamingOutputCallResponse>* writer) override {
    ++calls_;
    ++output_streams_;
    for (const auto& p : request->response_parameters()) {
      if (context->IsCancelled()) return grpc::Status::CANCELLED;
      if (p.interval_us() > 0)
        std::this_thread::sleep_for(std::chrono::microseconds(p.interval_us()));
      grpc::testing::StreamingOutputCallResponse response;
      response.mutable_payload()->set_body(std::string(p.size(), 'y'));
      if (!writer->Write(response)) return grpc::Status::CANCELLED;
      bytes_written_ += p.size();
    }
    if (fail_with_ != grpc::StatusCode::OK) return grpc::Status(fail_with_, name_ + " fails");
    return grpc::Status::OK;
  }

  // Client streaming: sums payload sizes.
  grpc::Status StreamingInputCall(
      grpc::ServerContext*, grpc::ServerReader<grpc::testing::StreamingInputCallRequest>* reader,
      grpc::testing::StreamingInputCallResponse* response) override {
    ++calls_;
    grpc::testing::StreamingInputCallRequest request;
    int total = 0;
    while (reader->Read(&request)) total += request.payload().body().size();
    response->set_aggregated_payload_size(total);
    return grpc::Status::OK;
  }

  // Bidi: answers every request with one message per response_parameters entry, whose body is
  // "<backend name>:" followed by `size` bytes.
  grpc::Status FullDuplexCall(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<grpc::testing::StreamingOutputCallResponse,
                               grpc::testing::StreamingOutputCallRequest>* stream) override {
    ++calls_;
    grpc::testing::StreamingOutputCallRequest request;
    while (stream->Read(&request)) {
      for (const auto& p : request.response_parameters()) {
        grpc::testing::StreamingOutputCallResponse response;
        response.mutable_payload()->set_body(name_ + ":" + std::string(p.size(), 'z'));
        if (!stream->Write(response)) return grpc::Status::CANCELLED;
      }
    }
    return grpc::Status::OK;
  }

 private:
  std::string name_;
  std::string address_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
  std::atomic<int> calls_{0};
  std::atomic<int64_t> bytes_written_{0};
  std::atomic<int> cancelled_{0};
  std::atomic<int> output_streams_{0};
  std::atomic<grpc::StatusCode> fail_with_{grpc::StatusCode::OK};
};

inline std::unique_ptr<grpc::testing::TestService::Stub> ProxyStub(
    int port, const std::string& authority = "") {
  grpc::ChannelArguments args;
  if (!authority.empty()) args.SetString(GRPC_ARG_DEFAULT_AUTHORITY, authority);
  // A fresh channel each time (no subchannel sharing), so "one channel" means one connection.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  return grpc::testing::TestService::NewStub(grpc::CreateCustomChannel(
      "127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials(), args));
}

}  // namespace podlb::testing
