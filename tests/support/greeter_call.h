// One unary call to the sandbox's greeter (grpc.testing.TestService/UnaryCall), returning the
// name of the pod that answered, or "" on any failure: the probe the end-to-end tests count
// calls with. Any thread.
#pragma once

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string>

#include "grpc/testing/test.grpc.pb.h"

namespace podlb::testing {

inline std::string CallForPodName(grpc::testing::TestService::Stub& stub,
                                  std::chrono::milliseconds timeout, bool wait_for_ready) {
  grpc::ClientContext context;
  context.set_wait_for_ready(wait_for_ready);
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::testing::SimpleRequest request;
  grpc::testing::SimpleResponse response;
  grpc::Status status = stub.UnaryCall(&context, request, &response);
  return status.ok() ? response.hostname() : "";
}

}  // namespace podlb::testing
