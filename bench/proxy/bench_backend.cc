// A gRPC backend "pod" for the proxy benchmark: grpc.testing.TestService/UnaryCall answering
// with its name, on the address given. Prints "listening PORT" once up and, on SIGTERM/SIGINT,
// "calls N" (so the benchmark can report each proxy's balance) and exits.
//   bench_backend NAME HOST:PORT
//
// It is grpc++'s asynchronous server with one thread that both polls and answers: the cheapest
// way grpc++ serves a unary call (no hand-off to a pool thread). Every target in the benchmark
// sits in front of the same backends, so a cheaper backend leaves more of the 2 cores to the
// thing being measured, the proxy, instead of to grpc++'s thread hand-offs.
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <thread>

#include "grpc/testing/test.grpc.pb.h"

namespace {

using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using Service = grpc::testing::TestService::AsyncService;

// One unary call from request to finish; the completion-queue tag is the object itself.
class UnaryCall {
 public:
  UnaryCall(Service* service, grpc::ServerCompletionQueue* cq, const std::string* name,
            std::atomic<int64_t>* calls)
      : service_(service), cq_(cq), name_(name), calls_(calls), responder_(&context_) {
    service_->RequestUnaryCall(&context_, &request_, &responder_, cq_, cq_, this);
  }

  // Advances the call on its completion-queue event; deletes itself when done.
  void Proceed(bool ok) {
    if (finishing_ || !ok) {
      delete this;
      return;
    }
    new UnaryCall(service_, cq_, name_, calls_);  // be ready for the next call at once
    calls_->fetch_add(1, std::memory_order_relaxed);
    SimpleResponse response;
    response.set_hostname(*name_);
    if (request_.response_size() > 0) {
      response.mutable_payload()->set_body(std::string(request_.response_size(), 'x'));
    }
    finishing_ = true;
    responder_.Finish(response, grpc::Status::OK, this);
  }

 private:
  Service* service_;
  grpc::ServerCompletionQueue* cq_;
  const std::string* name_;
  std::atomic<int64_t>* calls_;
  grpc::ServerContext context_;
  SimpleRequest request_;
  grpc::ServerAsyncResponseWriter<SimpleResponse> responder_;
  bool finishing_ = false;
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
  const std::string name = argv[1];
  std::atomic<int64_t> calls{0};
  Service service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(argv[2], grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::ServerCompletionQueue> cq = builder.AddCompletionQueue();
  auto server = builder.BuildAndStart();
  if (!server) {
    std::fprintf(stderr, "bench_backend: cannot listen on %s\n", argv[2]);
    return 1;
  }
  // Enough outstanding requests for the benchmark's concurrency (32 connections x 64 streams
  // through a proxy arrive on few connections; grpc++ queues the rest until one is re-armed).
  for (int i = 0; i < 256; ++i) new UnaryCall(&service, cq.get(), &name, &calls);
  std::thread serve([&] {
    void* tag;
    bool ok;
    while (cq->Next(&tag, &ok)) static_cast<UnaryCall*>(tag)->Proceed(ok);
  });
  std::printf("listening %d\n", port);
  std::fflush(stdout);
  int sig = 0;
  sigwait(&set, &sig);
  std::printf("calls %lld\n", static_cast<long long>(calls.load()));
  std::fflush(stdout);
  server->Shutdown(std::chrono::system_clock::now());
  cq->Shutdown();
  serve.join();
  return 0;
}
