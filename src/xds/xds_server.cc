#include "xds/xds_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>
#include <unordered_map>

#include "absl/synchronization/notification.h"
#include "core/host_port.h"
#include "core/logging.h"
#include "core/sigpipe.h"
#include "discovery/kubernetes/kube_config.h"
#include "h2/event_loop.h"
#include "h2/listener.h"
#include "h2/tls.h"

namespace podlb::xds {
namespace {

using SharedSslCtx = std::shared_ptr<SSL_CTX>;

// gRPC's way of naming a peer ("ipv4:10.0.0.7:41234", "ipv6:[::1]:41234"), which /debug shows.
std::string PeerName(const sockaddr_storage& addr) {
  char host[INET6_ADDRSTRLEN] = "";
  if (addr.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(addr);
    inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof(host));
    return "ipv6:" + FormatHostPort(host, ntohs(in6.sin6_port));
  }
  const auto& in4 = reinterpret_cast<const sockaddr_in&>(addr);
  inet_ntop(AF_INET, &in4.sin_addr, host, sizeof(host));
  return "ipv4:" + FormatHostPort(host, ntohs(in4.sin_port));
}

// What the certificate files hold now, to tell a rotation from nothing (a missing file reads as
// empty: then the context does not load, which is reported where it is built).
std::string TlsFilesContent(const XdsTlsOptions& tls) {
  std::string content;
  for (const std::string* path : {&tls.cert_file, &tls.key_file, &tls.client_ca_file}) {
    content += ReadWholeFile(*path).value_or("");
    content += '\0';
  }
  return content;
}

absl::StatusOr<SharedSslCtx> MakeTlsContext(const XdsTlsOptions& tls) {
  auto ctx = h2::MakeServerTlsContext(h2::ServerTlsFiles{
      .cert_file = tls.cert_file,
      .key_file = tls.key_file,
      .client_ca_file = tls.client_ca_file,
      .cert_option = "XdsTlsOptions::cert_file",
      .key_option = "XdsTlsOptions::key_file",
      .client_ca_option = "XdsTlsOptions::client_ca_file"});
  if (!ctx.ok()) return ctx.status();
  return SharedSslCtx(ctx->release(), h2::SslCtxDeleter());
}

}  // namespace

// One event loop, its listening socket and the connections it accepted. Loop thread only, but
// for Start/RequestShutdown/AwaitDrained/StopAndJoin (control thread) and SetTls (any thread).
class XdsServer::Worker final : public h2::IoHandler, public AdsConnectionOwner {
 public:
  Worker(AdsService& service, const AdsConnectionLimits& limits, int listen_fd, SharedSslCtx tls)
      : service_(service), limits_(limits), listen_fd_(listen_fd), tls_(std::move(tls)) {}
  ~Worker() override {
    StopAndJoin();
    if (listen_fd_ >= 0) close(listen_fd_);
  }

  h2::EventLoop& loop() { return loop_; }

  absl::Status Start() {
    if (absl::Status status = loop_.Init(); !status.ok()) return status;
    loop_.Add(listen_fd_, EPOLLIN, this);
    thread_ = std::thread([this] {
      BlockSigpipeInThisThread();  // a TLS write to a client that left must not kill the process
      loop_.Run();
      connections_.clear();
    });
    return absl::OkStatus();
  }

  void SetTls(SharedSslCtx tls) {
    loop_.Post([this, tls = std::move(tls)]() mutable { tls_ = std::move(tls); });
  }

  // Stops accepting and ends every connection's calls; AwaitDrained then waits for them to go.
  void RequestShutdown() {
    loop_.Post([this] {
      shutting_down_ = true;
      if (listen_fd_ >= 0) {
        loop_.Remove(listen_fd_);
        close(listen_fd_);
        listen_fd_ = -1;
      }
      for (auto& [raw, connection] : connections_) connection->Shutdown();
      CheckDrained();
    });
  }
  bool AwaitDrained(absl::Time deadline) { return drained_.WaitForNotificationWithDeadline(deadline); }

  void StopAndJoin() {
    if (!thread_.joinable()) return;
    loop_.Stop();
    thread_.join();
  }

  void OnIo(uint32_t) override { Accept(); }

  void OnConnectionClosed(AdsConnection* connection) override {
    auto it = connections_.find(connection);
    if (it == connections_.end()) return;
    loop_.DeferDelete(std::move(it->second));
    connections_.erase(it);
    CheckDrained();
  }

  void OnTlsHandshakeFailed(const std::string& peer, const std::string& why) override {
    tls_failure_log_.Log(fmt::format("xds: TLS handshake with {} failed: {}", peer, why));
  }

 private:
  static constexpr int kAcceptsPerEvent = 64;

  void Accept() {
    for (int i = 0; i < kAcceptsPerEvent && listen_fd_ >= 0; ++i) {
      sockaddr_storage addr{};
      socklen_t len = sizeof(addr);
      int fd = accept4(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len,
                       SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
          LogWarn("xds: accept: {} (file descriptor limit? raise ulimit -n)", strerror(errno));
        }
        return;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      SSL* ssl = nullptr;
      if (tls_ != nullptr) {
        ssl = SSL_new(tls_.get());  // holds its own reference to the context
        SSL_set_fd(ssl, fd);
        SSL_set_accept_state(ssl);
      }
      auto connection = std::make_unique<AdsConnection>(loop_, service_, *this, limits_, fd, ssl,
                                                        PeerName(addr));
      AdsConnection* raw = connection.get();
      connections_.emplace(raw, std::move(connection));
    }
  }

  void CheckDrained() {
    if (shutting_down_ && connections_.empty() && !drained_.HasBeenNotified()) drained_.Notify();
  }

  AdsService& service_;
  const AdsConnectionLimits& limits_;
  h2::EventLoop loop_;
  std::thread thread_;
  int listen_fd_;
  SharedSslCtx tls_;
  // One line per 10 s for this loop's failed TLS handshakes, however many clients retry.
  LogThrottle tls_failure_log_{LogLevel::kInfo, absl::Seconds(10)};
  bool shutting_down_ = false;
  absl::Notification drained_;
  std::unordered_map<AdsConnection*, std::unique_ptr<AdsConnection>> connections_;
};

XdsServer::XdsServer(Registry& registry, XdsServerOptions options)
    : options_(std::move(options)),
      service_(std::make_unique<AdsService>(registry, options_.ads)) {}

XdsServer::~XdsServer() { Stop(); }

absl::Status XdsServer::Start() {
  const XdsTlsOptions& tls = options_.tls;
  if (!tls.cert_file.empty() && tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "xds: XdsTlsOptions::cert_file given without XdsTlsOptions::key_file; give both, or "
        "neither for plaintext");
  }
  auto address = ParseHostPort(options_.listen);
  if (!address.ok()) {
    return absl::InvalidArgumentError("xds: XdsServerOptions::listen \"" + options_.listen +
                                      "\": " + std::string(address.status().message()));
  }
  SharedSslCtx tls_context;
  if (!tls.cert_file.empty()) {
    tls_files_loaded_ = TlsFilesContent(tls);
    auto ctx = MakeTlsContext(tls);
    if (!ctx.ok()) return ctx.status();
    tls_context = std::move(*ctx);
  }
  int workers = options_.workers > 0 ? options_.workers
                                     : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  std::vector<int> fds;
  uint16_t port = address->port;
  for (int w = 0; w < workers; ++w) {
    auto fd = h2::BindReusePortListener(address->host, port, "XdsServerOptions::listen");
    if (!fd.ok()) {
      for (int open_fd : fds) close(open_fd);
      return absl::UnavailableError("xds: cannot listen on " + options_.listen + ": " +
                                    std::string(fd.status().message()));
    }
    port = h2::BoundPort(*fd);  // port 0: the other workers join the port the first one got
    fds.push_back(*fd);
  }
  service_->Start();
  for (int fd : fds) {
    workers_.push_back(std::make_unique<Worker>(*service_, options_.limits, fd, tls_context));
    if (absl::Status status = workers_.back()->Start(); !status.ok()) {
      Stop();
      return status;
    }
  }
  port_ = port;
  if (tls_context != nullptr && tls.reload_interval_seconds > 0) {
    // The reload runs on the first worker's loop; tls_files_loaded_ is that thread's from here on.
    workers_.front()->loop().Post([this] { ScheduleTlsReload(); });
  }
  LogInfo("xds: serving ADS on {} (port {}, {}, {} event loops)", options_.listen, port_,
          tls.cert_file.empty() ? "plaintext" : tls.client_ca_file.empty() ? "TLS" : "mTLS",
          workers);
  return absl::OkStatus();
}

void XdsServer::ScheduleTlsReload() {
  workers_.front()->loop().AddTimer(std::chrono::seconds(options_.tls.reload_interval_seconds),
                                    [this] {
                                      ReloadTls();
                                      ScheduleTlsReload();
                                    });
}

void XdsServer::ReloadTls() {
  const XdsTlsOptions& tls = options_.tls;
  std::string files = TlsFilesContent(tls);
  if (files == tls_files_loaded_) return;
  tls_files_loaded_ = files;
  auto ctx = MakeTlsContext(tls);
  if (!ctx.ok()) {
    // Mid-rotation (the certificate replaced, not yet its key) or broken: keep serving with what
    // loaded last; the next change of the files is tried again.
    LogWarn("xds: the changed certificate files do not load, keeping the previous ones: {}",
            std::string(ctx.status().message()));
    return;
  }
  LogInfo("xds: certificate files changed; new connections use them");
  for (auto& worker : workers_) worker->SetTls(*ctx);
}

void XdsServer::Stop() {
  if (!workers_.empty()) {
    for (auto& worker : workers_) worker->RequestShutdown();
    absl::Time deadline = absl::Now() + absl::Seconds(1);
    for (auto& worker : workers_) worker->AwaitDrained(deadline);
    for (auto& worker : workers_) worker->StopAndJoin();
    workers_.clear();
  }
  service_->Stop();
}

}  // namespace podlb::xds
