// PodTestService: grpc.testing.TestService as a BackendPod serves it, on gRPC's callback API.
// Every call is first admitted through the pod's FaultInjector; the callback API is what lets a
// call held by a delay or a stuck fault (or waiting out interop's interval_us) cost no thread.
// gRPC calls it on its callback threads; the object must outlive the server it is registered on.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "grpc/testing/test.grpc.pb.h"
#include "sandbox/pods/fault_injector.h"

namespace podlb::sandbox {

class PodTestService final : public grpc::testing::TestService::CallbackService {
 public:
  // `name` is returned in SimpleResponse.hostname and .server_id; `on_call` hears of each call
  // as it arrives (the pod's counters).
  PodTestService(std::string name, std::shared_ptr<FaultInjector> faults,
                 std::function<void(grpc::CallbackServerContext*)> on_call);

  grpc::ServerUnaryReactor* EmptyCall(grpc::CallbackServerContext* context,
                                      const grpc::testing::Empty* request,
                                      grpc::testing::Empty* response) override;
  grpc::ServerUnaryReactor* UnaryCall(grpc::CallbackServerContext* context,
                                      const grpc::testing::SimpleRequest* request,
                                      grpc::testing::SimpleResponse* response) override;
  grpc::ServerUnaryReactor* CacheableUnaryCall(grpc::CallbackServerContext* context,
                                               const grpc::testing::SimpleRequest* request,
                                               grpc::testing::SimpleResponse* response) override;
  grpc::ServerWriteReactor<grpc::testing::StreamingOutputCallResponse>* StreamingOutputCall(
      grpc::CallbackServerContext* context,
      const grpc::testing::StreamingOutputCallRequest* request) override;
  grpc::ServerReadReactor<grpc::testing::StreamingInputCallRequest>* StreamingInputCall(
      grpc::CallbackServerContext* context,
      grpc::testing::StreamingInputCallResponse* response) override;
  grpc::ServerBidiReactor<grpc::testing::StreamingOutputCallRequest,
                          grpc::testing::StreamingOutputCallResponse>*
  FullDuplexCall(grpc::CallbackServerContext* context) override;
  grpc::ServerBidiReactor<grpc::testing::StreamingOutputCallRequest,
                          grpc::testing::StreamingOutputCallResponse>*
  HalfDuplexCall(grpc::CallbackServerContext* context) override;

 private:
  const std::string name_;
  std::shared_ptr<FaultInjector> faults_;
  std::function<void(grpc::CallbackServerContext*)> on_call_;
};

}  // namespace podlb::sandbox
