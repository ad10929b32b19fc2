// A gRPC backend "pod" for the proxy benchmark: grpc.testing.TestService/UnaryCall answering
// with its name, on the address given. Prints "listening PORT" once up and, on SIGTERM/SIGINT,
// "calls N" (so the benchmark can report each proxy's balance) and exits.
//   bench_backend NAME HOST:PORT
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "grpc/testing/test.grpc.pb.h"

namespace {

class Backend final : public grpc::testing::TestService::Service {
 public:
  explicit Backend(std::string name) : name_(std::move(name)) {}
  grpc::Status UnaryCall(grpc::ServerContext*, const grpc::testing::SimpleRequest* request,
                         grpc::testing::SimpleResponse* response) override {
    calls_.fetch_add(1, std::memory_order_relaxed);
    response->set_hostname(name_);
    if (request->response_size() > 0)
      response->mutable_payload()->set_body(std::string(request->response_size(), 'x'));
    return grpc::Status::OK;
  }
  int64_t calls() const { return calls_.load(); }

 private:
  std::string name_;
  std::atomic<int64_t> calls_{0};
};

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s NAME HOST:PORT\n", argv[0]);
    return 2;
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  Backend backend(argv[1]);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(argv[2], grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&backend);
  auto server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "bench_backend: cannot listen on %s\n", argv[2]);
    return 1;
  }
  std::printf("listening %d\n", port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  std::printf("calls %lld\n", static_cast<long long>(backend.calls()));
  std::fflush(stdout);
  server->Shutdown(std::chrono::system_clock::now());
  return 0;
}
