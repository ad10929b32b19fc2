// Helpers for the client library tests: a fleet of sandbox BackendPods on their own loopback
// addresses, endpoint lists for them, and a caller that runs unary calls and tallies where they
// went. Test thread only, except Caller which runs its own threads.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"
#include "core/endpoint.h"
#include "grpc/testing/test.grpc.pb.h"
#include "sandbox/pods/backend_pod.h"

namespace podlb::testing {

// Starts a pod named `name` on 127.0.0.`octet`:`port` (0: any free port).
inline std::unique_ptr<sandbox::BackendPod> StartPod(const std::string& name, int octet,
                                                     uint16_t port = 0) {
  auto pod = std::make_unique<sandbox::BackendPod>(sandbox::BackendPodOptions{
      .name = name, .ip = "127.0.0." + std::to_string(octet), .port = port});
  absl::Status status = pod->Start();
  EXPECT_TRUE(status.ok()) << status;
  return pod;
}

inline Endpoint EndpointOf(const sandbox::BackendPod& pod, bool terminating = false) {
  return Endpoint{.address = pod.ip(),
                  .port = pod.port(),
                  .pod_name = pod.name(),
                  .ready = !terminating,
                  .serving = true,
                  .terminating = terminating};
}

// Calls UnaryCall and returns the serving pod's name, or "error: <status>".
inline std::string CallOnce(grpc::testing::TestService::Stub& stub,
                            std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + timeout);
  grpc::testing::SimpleRequest request;
  grpc::testing::SimpleResponse response;
  grpc::Status status = stub.UnaryCall(&context, request, &response);
  if (!status.ok()) return "error: " + std::to_string(status.error_code()) + " " + status.error_message();
  return response.hostname();
}

// Runs unary calls back to back on `threads` threads until destroyed; counts per pod and errors.
class Caller {
 public:
  Caller(std::shared_ptr<grpc::ChannelInterface> channel, int threads)
      : stub_(grpc::testing::TestService::NewStub(channel)) {
    for (int i = 0; i < threads; ++i) {
      threads_.emplace_back([this] {
        while (!stop_.load()) {
          std::string result = CallOnce(*stub_);
          absl::MutexLock lock(&mu_);
          if (result.rfind("error: ", 0) == 0) {
            errors_.push_back(result);
          } else {
            ++counts_[result];
          }
        }
      });
    }
  }
  ~Caller() { Stop(); }
  void Stop() {
    stop_.store(true);
    for (auto& t : threads_) t.join();
    threads_.clear();
  }
  int CountFor(const std::string& pod) {
    absl::MutexLock lock(&mu_);
    return counts_[pod];
  }
  std::vector<std::string> Errors() {
    absl::MutexLock lock(&mu_);
    return errors_;
  }

 private:
  std::unique_ptr<grpc::testing::TestService::Stub> stub_;
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
  absl::Mutex mu_;
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> errors_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb::testing
