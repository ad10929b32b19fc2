#include "proxy/health_checker.h"

#include <nghttp2/nghttp2.h>

#include <cstring>
#include <vector>

#include "core/logging.h"
#include "proxy/cluster.h"
#include "proxy/upstream_session.h"
#include "proxy/upstream_stream.h"

namespace podlb::proxy {
namespace {

// HealthCheckRequest{service: ""} in gRPC framing, and HealthCheckResponse{status: SERVING}.
constexpr uint8_t kRequest[] = {0, 0, 0, 0, 0};
constexpr uint8_t kServing[] = {0, 0, 0, 0, 2, 0x08, 0x01};

}  // namespace

class HealthChecker::Probe final : public UpstreamStreamHandler {
 public:
  Probe(HealthChecker* checker, UpstreamHost* host) : checker_(checker), host_(host) {
    headers_.Add(":method", "POST");
    headers_.Add(":scheme", "http");
    headers_.Add(":path", "/grpc.health.v1.Health/Check");
    headers_.Add(":authority", host->host_port);
    headers_.Add("content-type", "application/grpc");
    headers_.Add("te", "trailers");
  }
  UpstreamHost* host() const { return host_; }
  void Attach(UpstreamSession* session, int32_t id) {
    session_ = session;
    id_ = id;
  }
  void Cancel() {
    if (session_ != nullptr) session_->Cancel(id_);
    session_ = nullptr;
  }

  const HeaderBlock& request_headers() const override { return headers_; }
  ssize_t ReadRequest(uint8_t* buf, size_t len, uint32_t* flags) override {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (sent_ || len < sizeof(kRequest)) return 0;
    sent_ = true;
    std::memcpy(buf, kRequest, sizeof(kRequest));
    return sizeof(kRequest);
  }
  void OnRequestHeadersSent() override {}
  void AddResponseHeader(bool, std::string_view name, std::string_view value) override {
    if (name == "grpc-status") grpc_status_ = value;
  }
  void OnResponseHeadersDone(bool) override {}
  void OnResponseData(const uint8_t* data, size_t len) override {
    if (session_ != nullptr) session_->Consume(id_, len);
    if (body_.size() < 64) body_.append(reinterpret_cast<const char*>(data), len);
  }
  void OnResponseEnd() override {}
  void OnUpstreamClosed(uint32_t, bool, bool) override {
    session_ = nullptr;
    bool serving = grpc_status_ == "0" && body_.size() == sizeof(kServing) &&
                   std::memcmp(body_.data(), kServing, sizeof(kServing)) == 0;
    checker_->OnProbeDone(this, serving);  // destroys this
  }

 private:
  HealthChecker* checker_;
  UpstreamHost* host_;
  UpstreamSession* session_ = nullptr;
  int32_t id_ = -1;
  HeaderBlock headers_;
  bool sent_ = false;
  std::string grpc_status_;
  std::string body_;
};

HealthChecker::HealthChecker(Cluster* cluster, EventLoop& loop, std::chrono::milliseconds interval)
    : cluster_(cluster), loop_(loop), interval_(interval) {
  timer_ = loop_.AddTimer(std::chrono::milliseconds(0), [this] { Tick(); });
}

HealthChecker::~HealthChecker() {
  if (timer_ != 0) loop_.CancelTimer(timer_);
  auto probes = std::move(probes_);
  probes_.clear();
  for (auto& [host, probe] : probes) probe->Cancel();
}

void HealthChecker::SetHealth(UpstreamHost* host, bool serving) {
  if (host->health_check_failed == !serving) return;
  host->health_check_failed = !serving;
  LogInfo("proxy: health check: {} of {} is {}", host->host_port, cluster_->key().ToString(),
          serving ? "SERVING again" : "not SERVING: no new streams");
}

void HealthChecker::OnProbeDone(Probe* probe, bool serving) {
  UpstreamHost* host = probe->host();
  auto it = probes_.find(host);
  if (it == probes_.end() || it->second.get() != probe) return;
  SetHealth(host, serving);
  probes_.erase(it);
}

void HealthChecker::Tick() {
  timer_ = loop_.AddTimer(interval_, [this] { Tick(); });
  for (UpstreamHost* host : cluster_->Hosts()) {
    if (auto it = probes_.find(host); it != probes_.end()) {
      // No answer within a whole interval counts as a failure.
      auto stale = std::move(it->second);
      probes_.erase(it);
      stale->Cancel();
      SetHealth(host, false);
    }
    UpstreamSession* session = cluster_->SessionFor(host);
    if (session == nullptr) {
      SetHealth(host, false);
      continue;
    }
    auto probe = std::make_unique<Probe>(this, host);
    int32_t id = session->Submit(probe.get());
    if (id < 0) continue;
    probe->Attach(session, id);
    probes_.emplace(host, std::move(probe));
  }
}

}  // namespace podlb::proxy
