#include "sandbox/pods/pod_runtime.h"

#include <arpa/inet.h>

#include <thread>

#include "absl/strings/str_cat.h"
#include "core/logging.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"

namespace podlb::sandbox {

GrpcPodRuntime::~GrpcPodRuntime() { StopAll(std::chrono::milliseconds(0)); }

absl::Status GrpcPodRuntime::StartPod(const PodLaunch& launch) {
  BackendPodOptions options;
  options.name = launch.name;
  options.ip = launch.ip;
  options.port = launch.port;
  options.max_connection_age = options_.max_connection_age;
  options.fault = launch.fault;
  auto pod = std::make_shared<BackendPod>(options);
  if (auto status = pod->Start(); !status.ok()) return status;
  absl::MutexLock lock(&mu_);
  pods_[launch.name] = std::move(pod);
  return absl::OkStatus();
}

absl::Status GrpcPodRuntime::ProbeReadiness(const std::string& name) {
  auto pod = Find(name);
  if (!pod) return absl::NotFoundError("pod " + name + " is not running");
  // The kubelet's gRPC probe: a fresh connection and one health Check.
  auto channel = grpc::CreateChannel(pod->address(), grpc::InsecureChannelCredentials());
  auto stub = grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + options_.probe_timeout);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) {
    return absl::UnavailableError(
        absl::StrCat("pod ", name, ": readiness probe failed: ", status.error_message()));
  }
  if (response.status() != grpc::health::v1::HealthCheckResponse::SERVING) {
    return absl::UnavailableError(absl::StrCat("pod ", name, ": health is not SERVING"));
  }
  return absl::OkStatus();
}

void GrpcPodRuntime::BeginTermination(const std::string& name) {
  if (auto pod = Find(name)) pod->BeginTermination();
}

void GrpcPodRuntime::SetFault(const std::string& name, const PodFault& fault) {
  if (auto pod = Find(name)) pod->SetFault(fault);
}

void GrpcPodRuntime::StopPod(const std::string& name, std::chrono::milliseconds deadline) {
  std::shared_ptr<BackendPod> pod;
  {
    absl::MutexLock lock(&mu_);
    auto it = pods_.find(name);
    if (it == pods_.end()) return;
    pod = it->second;
    pods_.erase(it);
  }
  pod->Shutdown(deadline);
}

void GrpcPodRuntime::StopAll(std::chrono::milliseconds deadline) {
  std::map<std::string, std::shared_ptr<BackendPod>> pods;
  {
    absl::MutexLock lock(&mu_);
    pods.swap(pods_);
  }
  std::vector<std::thread> stoppers;
  for (auto& [name, pod] : pods) {
    stoppers.emplace_back([pod = pod, deadline] { pod->Shutdown(deadline); });
  }
  for (auto& t : stoppers) t.join();
}

std::shared_ptr<BackendPod> GrpcPodRuntime::Find(const std::string& name) const {
  absl::MutexLock lock(&mu_);
  auto it = pods_.find(name);
  return it == pods_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<BackendPod>> GrpcPodRuntime::Pods() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::shared_ptr<BackendPod>> out;
  for (const auto& [name, pod] : pods_) out.push_back(pod);
  return out;
}

namespace {

uint32_t ParseIpv4(const std::string& text) {
  in_addr addr{};
  if (inet_pton(AF_INET, text.c_str(), &addr) != 1) return 0x7f000002;  // 127.0.0.2
  return ntohl(addr.s_addr);
}

std::string FormatIpv4(uint32_t ip) {
  return absl::StrCat(ip >> 24, ".", (ip >> 16) & 0xff, ".", (ip >> 8) & 0xff, ".", ip & 0xff);
}

// Next address in 127/8, skipping .0, .1 and .255 in the last octet (network, the host's own
// 127.0.0.1-style address, broadcast-looking) so addresses read like pod IPs.
uint32_t NextIp(uint32_t ip) {
  do {
    ++ip;
    if ((ip >> 24) != 127) ip = 0x7f000002;
  } while ((ip & 0xff) < 2 || (ip & 0xff) == 255);
  return ip;
}

}  // namespace

PodIpAllocator::PodIpAllocator(const std::string& first)
    : first_(ParseIpv4(first)), next_(first_) {}

std::string PodIpAllocator::Allocate() {
  absl::MutexLock lock(&mu_);
  uint32_t ip = next_;
  while (in_use_.count(ip)) ip = NextIp(ip);
  in_use_[ip] = true;
  next_ = NextIp(ip);
  return FormatIpv4(ip);
}

void PodIpAllocator::Release(const std::string& ip) {
  absl::MutexLock lock(&mu_);
  in_use_.erase(ParseIpv4(ip));
}

}  // namespace podlb::sandbox
