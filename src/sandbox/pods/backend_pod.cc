#include "sandbox/pods/backend_pod.h"

#include <mutex>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/logging.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/grpcpp.h"
#include "sandbox/pods/fault_injector.h"
#include "sandbox/pods/pod_test_service.h"

namespace podlb::sandbox {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// Shared between the services and the pod object; outlives neither, but shared_ptr keeps the
// ownership obvious.
struct BackendPod::State {
  absl::Mutex mu;
  bool terminating ABSL_GUARDED_BY(mu) = false;
  bool shutting_down ABSL_GUARDED_BY(mu) = false;
  std::set<std::string> peers ABSL_GUARDED_BY(mu);
  std::atomic<uint64_t> calls{0};

  void CountCall(grpc::ServerContextBase* context) {
    calls.fetch_add(1);
    absl::MutexLock lock(&mu);
    // Each HTTP/2 connection has its own client port, so distinct peers = connections.
    peers.insert(context->peer());
  }
};

// grpc.health.v1.Health with Watch. Written here rather than using gRPC's default health
// service so that the health messages are linked in (reflection can describe them) and the
// status follows the pod's lifecycle exactly.
class BackendPod::HealthServiceImpl final : public grpc::health::v1::Health::Service {
 public:
  explicit HealthServiceImpl(std::shared_ptr<State> state) : state_(std::move(state)) {}

  grpc::Status Check(grpc::ServerContext*, const HealthCheckRequest* request,
                     HealthCheckResponse* response) override {
    if (!Known(request->service())) {
      return grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown service " + request->service());
    }
    absl::MutexLock lock(&state_->mu);
    response->set_status(StatusLocked());
    return grpc::Status::OK;
  }

  grpc::Status Watch(grpc::ServerContext* context, const HealthCheckRequest* request,
                     grpc::ServerWriter<HealthCheckResponse>* writer) override {
    if (!Known(request->service())) {
      HealthCheckResponse response;
      response.set_status(HealthCheckResponse::SERVICE_UNKNOWN);
      writer->Write(response);
      // The protocol keeps the stream open for a service that may appear later; ours never do.
    }
    std::optional<HealthCheckResponse::ServingStatus> sent;
    absl::MutexLock lock(&state_->mu);
    while (true) {
      if (state_->shutting_down) {
        return grpc::Status(grpc::StatusCode::UNAVAILABLE, "pod is shutting down");
      }
      if (Known(request->service())) {
        HealthCheckResponse::ServingStatus now = StatusLocked();
        if (!sent || *sent != now) {
          HealthCheckResponse response;
          response.set_status(now);
          sent = now;
          state_->mu.Unlock();
          bool ok = writer->Write(response);
          state_->mu.Lock();
          if (!ok) return grpc::Status::CANCELLED;
          continue;
        }
      }
      // Wake on a status change; the timeout only bounds how long a cancelled call lingers,
      // because a sync handler has no cancellation callback.
      auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
        return state_->shutting_down || (sent && *sent != StatusLocked());
      };
      state_->mu.AwaitWithTimeout(absl::Condition(&changed), absl::Milliseconds(200));
      if (context->IsCancelled()) return grpc::Status::CANCELLED;
    }
  }

 private:
  static bool Known(const std::string& service) {
    return service.empty() || service == "grpc.testing.TestService";
  }
  HealthCheckResponse::ServingStatus StatusLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state_->mu) {
    return state_->terminating ? HealthCheckResponse::NOT_SERVING : HealthCheckResponse::SERVING;
  }

  std::shared_ptr<State> state_;
};

BackendPod::BackendPod(BackendPodOptions options)
    : options_(std::move(options)),
      state_(std::make_shared<State>()),
      faults_(FaultInjector::Create(options_.name, options_.fault)) {}

BackendPod::~BackendPod() { Shutdown(std::chrono::milliseconds(0)); }

absl::Status BackendPod::Start() {
  if (server_) return absl::FailedPreconditionError("pod " + options_.name + " already started");
  test_service_ = std::make_unique<PodTestService>(
      options_.name, faults_,
      [state = state_](grpc::CallbackServerContext* context) { state->CountCall(context); });
  health_service_ = std::make_unique<HealthServiceImpl>(state_);
  // Registers a process-wide builder plugin; once is enough and must not race.
  static std::once_flag reflection_once;
  std::call_once(reflection_once,
                 [] { grpc::reflection::InitProtoReflectionServerBuilderPlugin(); });
  grpc::ServerBuilder builder;
  int selected_port = 0;
  builder.AddListeningPort(absl::StrCat(options_.ip, ":", options_.port),
                           grpc::InsecureServerCredentials(), &selected_port);
  // Without this two sandboxes that picked the same pod port would silently share it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  if (options_.max_connection_age) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                               static_cast<int>(options_.max_connection_age->count()));
  }
  builder.RegisterService(test_service_.get());
  builder.RegisterService(health_service_.get());
  server_ = builder.BuildAndStart();
  if (!server_ || selected_port == 0) {
    server_.reset();
    return absl::UnavailableError(absl::StrCat("pod ", options_.name, ": cannot listen on ",
                                               options_.ip, ":", options_.port,
                                               " (address in use? pick another BackendPodOptions::port)"));
  }
  port_ = static_cast<uint16_t>(selected_port);
  running_ = true;
  return absl::OkStatus();
}

void BackendPod::BeginTermination() {
  absl::MutexLock lock(&state_->mu);
  state_->terminating = true;
}

void BackendPod::Shutdown(std::chrono::milliseconds deadline) {
  if (!server_) return;
  {
    absl::MutexLock lock(&state_->mu);
    state_->terminating = true;
    state_->shutting_down = true;  // ends health Watch streams so Shutdown need not wait on them
  }
  faults_->Shutdown();
  server_->Shutdown(std::chrono::system_clock::now() + deadline);
  server_->Wait();
  server_.reset();
  running_ = false;
}

std::string BackendPod::address() const { return absl::StrCat(options_.ip, ":", port_); }

bool BackendPod::terminating() const {
  absl::MutexLock lock(&state_->mu);
  return state_->terminating;
}

uint64_t BackendPod::calls_served() const { return state_->calls.load(); }

uint64_t BackendPod::connections_accepted() const {
  absl::MutexLock lock(&state_->mu);
  return state_->peers.size();
}

void BackendPod::SetFault(const PodFault& fault) {
  if (fault == faults_->fault()) return;
  LogInfo("pod {}: fault {}", options_.name, fault.ToString());
  faults_->SetFault(fault);
}

PodFault BackendPod::fault() const { return faults_->fault(); }

uint64_t BackendPod::calls_failed_by_fault() const { return faults_->calls_failed(); }
uint64_t BackendPod::calls_held_stuck() const { return faults_->calls_held_stuck(); }
size_t BackendPod::calls_held_now() const { return faults_->calls_held_now(); }

}  // namespace podlb::sandbox
