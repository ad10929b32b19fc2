// One reactor per call. Each reactor does one thing at a time (held by the fault injector,
// waiting out an interval, reading or writing), so only that one pending operation can end the
// call, and it calls Finish exactly once.
#include "sandbox/pods/pod_test_service.h"

#include <chrono>
#include <deque>
#include <vector>

#include "grpcpp/alarm.h"
#include "grpcpp/grpcpp.h"

namespace podlb::sandbox {
namespace {

using grpc::testing::ResponseParameters;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using grpc::testing::StreamingInputCallRequest;
using grpc::testing::StreamingInputCallResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;

grpc::Status EchoStatusOf(const grpc::testing::EchoStatus& status) {
  if (status.code() == 0) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), status.message());
}

void FillPayload(int32_t size, grpc::testing::Payload* payload) {
  payload->set_type(grpc::testing::COMPRESSABLE);
  payload->set_body(std::string(size > 0 ? static_cast<size_t>(size) : 0, '\0'));
}

// A reactor whose call is admitted through the pod's fault injector before it is served.
template <typename Reactor>
class AdmittedReactor : public Reactor {
 public:
  // Serve runs once the fault lets the call go; a held call let go with an error ends with it.
  void Admit() {
    ticket_ = faults_->Admit([this](const grpc::Status& status) {
      if (status.ok()) {
        Serve();
      } else {
        this->Finish(status);
      }
    });
  }
  // OnCancel comes only after the method handler returned, so ticket_ is set by then.
  void OnCancel() override { faults_->Cancel(ticket_); }
  void OnDone() override { delete this; }

 protected:
  explicit AdmittedReactor(std::shared_ptr<FaultInjector> faults) : faults_(std::move(faults)) {}
  virtual void Serve() = 0;

  // Runs `then` after `wait` on one of gRPC's threads. Not cancelled with the call: interop's
  // intervals are short, and a cancelled call's next read or write fails and ends it.
  void After(std::chrono::microseconds wait, std::function<void()> then) {
    // A fresh alarm per wait: an alarm must not be set again while its callback may still run.
    alarms_.push_back(std::make_unique<grpc::Alarm>());
    alarms_.back()->Set(std::chrono::system_clock::now() + wait,
                        [then = std::move(then)](bool) { then(); });
  }

 private:
  std::shared_ptr<FaultInjector> faults_;
  FaultInjector::Ticket ticket_ = 0;
  std::vector<std::unique_ptr<grpc::Alarm>> alarms_;
};

// Creates a reactor and admits its call; gRPC owns it from the return (OnDone deletes it).
template <typename R, typename... Args>
R* Start(Args&&... args) {
  auto* reactor = new R(std::forward<Args>(args)...);
  reactor->Admit();
  return reactor;
}

class UnaryReactor final : public AdmittedReactor<grpc::ServerUnaryReactor> {
 public:
  UnaryReactor(std::shared_ptr<FaultInjector> faults, std::function<grpc::Status()> answer)
      : AdmittedReactor(std::move(faults)), answer_(std::move(answer)) {}

 private:
  void Serve() override { Finish(answer_()); }
  std::function<grpc::Status()> answer_;
};

// Writes the responses StreamingOutputCallRequests ask for, one at a time, each after its
// interval_us (part of the interop protocol: the client asked for spaced-out messages).
template <typename Reactor>
class ResponsePlayer : public AdmittedReactor<Reactor> {
 public:
  void OnWriteDone(bool ok) override {
    if (!ok) {
      this->Finish(grpc::Status(grpc::StatusCode::CANCELLED, "the stream broke"));
      return;
    }
    WriteNext();
  }

 protected:
  using AdmittedReactor<Reactor>::AdmittedReactor;

  // Queues one response per entry of `params`, then runs `then`; a broken stream ends the call.
  void Play(const google::protobuf::RepeatedPtrField<ResponseParameters>& params,
            std::function<void()> then) {
    pending_.assign(params.begin(), params.end());
    then_ = std::move(then);
    WriteNext();
  }

 private:
  void WriteNext() {
    if (pending_.empty()) {
      std::function<void()> then = std::move(then_);
      then();
      return;
    }
    ResponseParameters params = pending_.front();
    pending_.pop_front();
    auto write = [this, size = params.size()] {
      FillPayload(size, response_.mutable_payload());
      this->StartWrite(&response_);
    };
    if (params.interval_us() > 0) {
      this->After(std::chrono::microseconds(params.interval_us()), write);
    } else {
      write();
    }
  }

  std::deque<ResponseParameters> pending_;
  std::function<void()> then_;
  StreamingOutputCallResponse response_;  // valid until OnWriteDone
};

class StreamingOutputReactor final
    : public ResponsePlayer<grpc::ServerWriteReactor<StreamingOutputCallResponse>> {
 public:
  StreamingOutputReactor(std::shared_ptr<FaultInjector> faults,
                         const StreamingOutputCallRequest* request)
      : ResponsePlayer(std::move(faults)), request_(request) {}

 private:
  void Serve() override {
    Play(request_->response_parameters(),
         [this] { Finish(EchoStatusOf(request_->response_status())); });
  }
  const StreamingOutputCallRequest* request_;
};

class StreamingInputReactor final
    : public AdmittedReactor<grpc::ServerReadReactor<StreamingInputCallRequest>> {
 public:
  StreamingInputReactor(std::shared_ptr<FaultInjector> faults, StreamingInputCallResponse* response)
      : AdmittedReactor(std::move(faults)), response_(response) {}

  void OnReadDone(bool ok) override {
    if (ok) {
      total_ += static_cast<int64_t>(request_.payload().body().size());
      StartRead(&request_);
      return;
    }
    response_->set_aggregated_payload_size(static_cast<int32_t>(total_));
    Finish(grpc::Status::OK);
  }

 private:
  void Serve() override { StartRead(&request_); }
  StreamingInputCallResponse* response_;
  StreamingInputCallRequest request_;
  int64_t total_ = 0;
};

using BidiReactor =
    grpc::ServerBidiReactor<StreamingOutputCallRequest, StreamingOutputCallResponse>;

// Answers each request as it arrives; a request carrying a status ends the call with it.
class FullDuplexReactor final : public ResponsePlayer<BidiReactor> {
 public:
  explicit FullDuplexReactor(std::shared_ptr<FaultInjector> faults)
      : ResponsePlayer(std::move(faults)) {}

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status::OK);
      return;
    }
    if (request_.has_response_status() && request_.response_status().code() != 0) {
      Finish(EchoStatusOf(request_.response_status()));
      return;
    }
    Play(request_.response_parameters(), [this] { StartRead(&request_); });
  }

 private:
  void Serve() override { StartRead(&request_); }
  StreamingOutputCallRequest request_;
};

// Reads every request first, then answers them all.
class HalfDuplexReactor final : public ResponsePlayer<BidiReactor> {
 public:
  explicit HalfDuplexReactor(std::shared_ptr<FaultInjector> faults)
      : ResponsePlayer(std::move(faults)) {}

  void OnReadDone(bool ok) override {
    if (ok) {
      params_.MergeFrom(request_.response_parameters());
      StartRead(&request_);
      return;
    }
    Play(params_, [this] { Finish(grpc::Status::OK); });
  }

 private:
  void Serve() override { StartRead(&request_); }
  StreamingOutputCallRequest request_;
  google::protobuf::RepeatedPtrField<ResponseParameters> params_;
};

}  // namespace

PodTestService::PodTestService(std::string name, std::shared_ptr<FaultInjector> faults,
                               std::function<void(grpc::CallbackServerContext*)> on_call)
    : name_(std::move(name)), faults_(std::move(faults)), on_call_(std::move(on_call)) {}

grpc::ServerUnaryReactor* PodTestService::EmptyCall(grpc::CallbackServerContext* context,
                                                    const grpc::testing::Empty*,
                                                    grpc::testing::Empty*) {
  on_call_(context);
  return Start<UnaryReactor>(faults_, [] { return grpc::Status::OK; });
}

grpc::ServerUnaryReactor* PodTestService::UnaryCall(grpc::CallbackServerContext* context,
                                                    const SimpleRequest* request,
                                                    SimpleResponse* response) {
  on_call_(context);
  return Start<UnaryReactor>(faults_, [this, request, response] {
    response->set_hostname(name_);
    response->set_server_id(name_);
    FillPayload(request->response_size(), response->mutable_payload());
    return EchoStatusOf(request->response_status());
  });
}

grpc::ServerUnaryReactor* PodTestService::CacheableUnaryCall(grpc::CallbackServerContext* context,
                                                             const SimpleRequest* request,
                                                             SimpleResponse* response) {
  return UnaryCall(context, request, response);
}

grpc::ServerWriteReactor<StreamingOutputCallResponse>* PodTestService::StreamingOutputCall(
    grpc::CallbackServerContext* context, const StreamingOutputCallRequest* request) {
  on_call_(context);
  return Start<StreamingOutputReactor>(faults_, request);
}

grpc::ServerReadReactor<StreamingInputCallRequest>* PodTestService::StreamingInputCall(
    grpc::CallbackServerContext* context, StreamingInputCallResponse* response) {
  on_call_(context);
  return Start<StreamingInputReactor>(faults_, response);
}

BidiReactor* PodTestService::FullDuplexCall(grpc::CallbackServerContext* context) {
  on_call_(context);
  return Start<FullDuplexReactor>(faults_);
}

BidiReactor* PodTestService::HalfDuplexCall(grpc::CallbackServerContext* context) {
  on_call_(context);
  return Start<HalfDuplexReactor>(faults_);
}

}  // namespace podlb::sandbox
