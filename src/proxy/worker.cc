#include "proxy/worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <random>

#include "absl/synchronization/notification.h"
#include "core/logging.h"
#include "core/sigpipe.h"
#include "proxy/downstream_session.h"

namespace podlb::proxy {
namespace {

constexpr size_t kAuthorityCacheLimit = 4096;
constexpr int kAcceptsPerEvent = 64;

}  // namespace

class Worker::Listener : public IoHandler {
 public:
  Listener(Worker* worker, ListenSocket socket) : worker_(worker), socket_(socket) {}
  ~Listener() override { Close(); }
  void OnIo(uint32_t) override { worker_->Accept(socket_); }
  void Close() {
    if (socket_.fd < 0) return;
    worker_->loop().Remove(socket_.fd);
    close(socket_.fd);
    socket_.fd = -1;
  }
  const ListenSocket& socket() const { return socket_; }

 private:
  Worker* worker_;
  ListenSocket socket_;
};

Worker::Worker(int index, const ProxyOptions& options, Registry& registry,
               ServiceBalancers& balancers, ProxyStats& stats, SSL_CTX* downstream_tls,
               SSL_CTX* upstream_tls)
    : index_(index),
      options_(options),
      registry_(registry),
      balancers_(balancers),
      stats_(stats),
      downstream_tls_(downstream_tls),
      random_(std::random_device{}() ^ (static_cast<uint64_t>(index) << 32)),
      upstream_connection_(UpstreamConnectionConfig::From(options, upstream_tls)),
      upstream_context_{.loop = loop_,
                        .stats = stats,
                        .random = random_,
                        .connection = upstream_connection_,
                        .max_connections_per_host = options.max_connections_per_host,
                        .health_check_interval = options.health_check_interval},
      downstream_context_{.owner = *this, .loop = loop_, .options = options, .stats = stats} {}

Worker::~Worker() {
  StopAndJoin();
  // Downstreams first: their streams cancel upstream streams on sessions the clusters own.
  downstreams_.clear();
  stats_.clusters.fetch_sub(static_cast<int64_t>(clusters_.size()), std::memory_order_relaxed);
  clusters_.clear();
  listeners_.clear();
}

absl::Status Worker::Start(std::vector<ListenSocket> sockets) {
  if (auto status = loop_.Init(); !status.ok()) return status;
  for (const ListenSocket& s : sockets) {
    listeners_.push_back(std::make_unique<Listener>(this, s));
    loop_.Add(s.fd, EPOLLIN, listeners_.back().get());
  }
  loop_.AddTimer(std::chrono::seconds(1), [this] { Tick(); });
  thread_ = std::thread([this] {
    BlockSigpipeInThisThread();  // peers close sockets we write to, in h2c and TLS alike
    loop_.Run();
    downstreams_.clear();
    stats_.clusters.fetch_sub(static_cast<int64_t>(clusters_.size()), std::memory_order_relaxed);
    clusters_.clear();
    listeners_.clear();
  });
  return absl::OkStatus();
}

void Worker::StopAndJoin() {
  if (!thread_.joinable()) return;
  loop_.Stop();
  thread_.join();
}

void Worker::Accept(const ListenSocket& socket) {
  for (int i = 0; i < kAcceptsPerEvent; ++i) {
    int fd = accept4(socket.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
        LogWarn("proxy: accept: {} (file descriptor limit? raise ulimit -n)", strerror(errno));
      return;
    }
    if (draining_) {
      close(fd);
      continue;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    SSL* ssl = nullptr;
    if (downstream_tls_ != nullptr) {
      ssl = SSL_new(downstream_tls_);
      SSL_set_fd(ssl, fd);
      SSL_set_accept_state(ssl);
    }
    auto session = std::make_unique<DownstreamSession>(downstream_context_, fd, socket.config, ssl);
    DownstreamSession* raw = session.get();
    downstreams_.emplace(raw, std::move(session));
  }
}

void Worker::OnDownstreamClosed(DownstreamSession* session) {
  auto it = downstreams_.find(session);
  if (it == downstreams_.end()) return;
  loop_.DeferDelete(std::move(it->second));
  downstreams_.erase(it);
  CheckIdle();
}

void Worker::OnStreamClosed() {
  --active_streams_;
  CheckIdle();
}

void Worker::CheckIdle() {
  if (draining_ && active_streams_ == 0 && on_idle_ && downstreams_.empty()) {
    auto on_idle = std::move(on_idle_);
    on_idle_ = nullptr;
    on_idle();
  }
}

Cluster* Worker::ClusterForKey(const ServiceKey& key) {
  auto it = clusters_.find(key);
  if (it != clusters_.end()) return it->second.get();
  auto cluster = std::make_unique<Cluster>(balancers_.ForKey(key), upstream_context_);
  Cluster* raw = cluster.get();
  clusters_.emplace(key, std::move(cluster));
  stats_.clusters.fetch_add(1, std::memory_order_relaxed);
  return raw;
}

Cluster* Worker::ClusterForAuthority(std::string_view authority, std::string* error) {
  std::string text(authority);
  if (auto it = authority_cache_.find(text); it != authority_cache_.end()) return it->second;
  auto key = ServiceKey::Parse(authority, options_.default_namespace);
  if (!key.ok()) {
    *error = "cannot route :authority \"" + text + "\": " + std::string(key.status().message()) +
             " (use name.namespace:port, or bind the listener to one Service)";
    return nullptr;
  }
  // Only services discovery knows are cached, so hostile authorities cannot grow the cache.
  if (registry_.Current(*key) == nullptr) {
    *error =
        "no endpoints known for service " + key->ToString() + " (from :authority \"" + text + "\")";
    return nullptr;
  }
  Cluster* cluster = ClusterForKey(*key);
  if (authority_cache_.size() < kAuthorityCacheLimit) authority_cache_.emplace(text, cluster);
  return cluster;
}

void Worker::Tick() {
  Clock::time_point now = loop_.now();
  std::vector<DownstreamSession*> sessions;
  sessions.reserve(downstreams_.size());
  for (auto& [raw, _] : downstreams_) sessions.push_back(raw);
  for (DownstreamSession* s : sessions)
    if (!s->closed()) s->CheckTimeouts(now);
  for (auto& [_, cluster] : clusters_) cluster->Sweep();
  RetireClusters();
  // One worker is enough to let the process-wide balancing state of gone Services go.
  if (index_ == 0) balancers_.Sweep();
  loop_.AddTimer(std::chrono::seconds(1), [this] { Tick(); });
}

void Worker::RetireClusters() {
  for (auto it = clusters_.begin(); it != clusters_.end();) {
    Cluster* cluster = it->second.get();
    // Only Services discovery no longer knows (deleted, or never published): a known Service
    // keeps its connections, even while it has no endpoints.
    if (registry_.Current(it->first) != nullptr || !cluster->RefreshAndCheckIdle()) {
      ++it;
      continue;
    }
    for (auto a = authority_cache_.begin(); a != authority_cache_.end();) {
      a = a->second == cluster ? authority_cache_.erase(a) : std::next(a);
    }
    it = clusters_.erase(it);
    stats_.clusters.fetch_sub(1, std::memory_order_relaxed);
  }
}

void Worker::PostDrain(std::function<void()> on_idle) {
  loop_.Post([this, on_idle = std::move(on_idle)]() mutable {
    draining_ = true;
    for (auto& l : listeners_) l->Close();
    for (auto& [raw, _] : downstreams_) raw->SendShutdownNotice();
    loop_.AddTimer(options_.shutdown_notice_delay, [this, on_idle = std::move(on_idle)]() mutable {
      std::vector<DownstreamSession*> sessions;
      for (auto& [raw, _] : downstreams_) sessions.push_back(raw);
      for (DownstreamSession* s : sessions) s->SendFinalGoaway();
      on_idle_ = std::move(on_idle);
      CheckIdle();  // connections without streams close on their next flush, and check again
    });
  });
}

std::string Worker::DescribeClusters() {
  std::string out;
  for (auto& [_, cluster] : clusters_)
    out += "worker " + std::to_string(index_) + ": " + cluster->Describe();
  return out;
}

}  // namespace podlb::proxy
