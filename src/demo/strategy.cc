#include "demo/strategy.h"

#include <thread>

#include "grpc/testing/test.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace podlb::demo {
namespace {

// Uses a completion queue and thread of its own rather than grpc++'s callback API: Debian's
// grpc 1.51 aborts (grpc_cq_internal_unref: prior > 0) when every channel using the shared
// callback queue goes away and new ones come, which is exactly what a run-after-run demo does.
class ChannelCaller final : public UnaryCaller {
 public:
  explicit ChannelCaller(std::shared_ptr<grpc::ChannelInterface> channel)
      : channel_(std::move(channel)),
        stub_(grpc::testing::TestService::NewStub(channel_)),
        poller_([this] { Poll(); }) {}
  // Callers outlive their calls (the workload waits for every completion first).
  ~ChannelCaller() override {
    cq_.Shutdown();
    poller_.join();
  }

  void Call(std::chrono::milliseconds deadline, std::function<void(CallOutcome)> done) override {
    auto* call = new InFlight;
    call->done = std::move(done);
    call->request.set_fill_server_id(true);
    call->context.set_deadline(std::chrono::system_clock::now() + deadline);
    call->reader = stub_->PrepareAsyncUnaryCall(&call->context, call->request, &cq_);
    call->reader->StartCall();
    call->reader->Finish(&call->response, &call->status, call);
  }

 private:
  struct InFlight {
    grpc::ClientContext context;
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    grpc::Status status;
    std::unique_ptr<grpc::ClientAsyncResponseReader<grpc::testing::SimpleResponse>> reader;
    std::function<void(CallOutcome)> done;
  };

  void Poll() {
    void* tag = nullptr;
    bool ok = false;
    while (cq_.Next(&tag, &ok)) {
      auto* call = static_cast<InFlight*>(tag);
      CallOutcome outcome;
      outcome.ok = ok && call->status.ok();
      if (outcome.ok) {
        outcome.pod = call->response.hostname();
      } else {
        outcome.error = call->status.error_message();
      }
      call->done(std::move(outcome));
      delete call;
    }
  }

  std::shared_ptr<grpc::ChannelInterface> channel_;
  std::unique_ptr<grpc::testing::TestService::Stub> stub_;
  grpc::CompletionQueue cq_;
  std::thread poller_;
};

}  // namespace

std::unique_ptr<UnaryCaller> MakeChannelCaller(std::shared_ptr<grpc::ChannelInterface> channel) {
  return std::make_unique<ChannelCaller>(std::move(channel));
}

grpc::ChannelArguments IndependentClientArgs(int client_index) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetInt("podlb.demo.client", client_index);
  return args;
}

void StrategyCatalog::Add(std::string name, StrategyMaker maker, bool policy_variant) {
  if (!makers_.count(name)) names_.push_back(name);
  if (policy_variant) variants_.insert(name);
  makers_[name] = std::move(maker);
}

bool StrategyCatalog::IsPolicyVariant(const std::string& name) const {
  return variants_.count(name) > 0;
}

bool StrategyCatalog::Has(const std::string& name) const { return makers_.count(name) > 0; }

std::unique_ptr<Strategy> StrategyCatalog::Make(const std::string& name,
                                                const StrategyOptions& options) const {
  auto it = makers_.find(name);
  return it == makers_.end() ? nullptr : it->second(options);
}

}  // namespace podlb::demo
