#include "proxy/proxy_server.h"

#include <errno.h>
#include <unistd.h>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "core/logging.h"
#include "fmt/format.h"
#include "h2/listener.h"
#include "proxy/worker.h"

namespace podlb::proxy {

ProxyServer::ProxyServer(ProxyOptions options, Registry& registry)
    : options_(std::move(options)),
      registry_(registry),
      balancers_(registry, balancing::BalancerOptions{.defaults = options_.balancing,
                                                      .local_zone = options_.zone,
                                                      .log_prefix = "podlb proxy",
                                                      .client_id = options_.subset_client_id}) {}

ProxyServer::~ProxyServer() {
  Stop();
}

absl::Status ProxyServer::Start() {
  if (options_.listeners.empty())
    return absl::InvalidArgumentError("proxy: no listener given (ProxyOptions::listeners is empty)");
  if (options_.workers < 1) options_.workers = 1;
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    auto tls = MakeServerTlsContext(options_.tls_cert_file, options_.tls_key_file);
    if (!tls.ok()) return tls.status();
    downstream_tls_ = std::move(*tls);
  }
  if (options_.upstream_tls.enabled) {
    auto tls = MakeClientTlsContext(options_.upstream_tls);
    if (!tls.ok()) return tls.status();
    upstream_tls_ = std::move(*tls);
  }
  std::vector<std::vector<ListenSocket>> per_worker(options_.workers);
  for (const ListenerConfig& l : options_.listeners) {
    uint16_t port = l.port;
    for (int w = 0; w < options_.workers; ++w) {
      auto fd = h2::BindReusePortListener(l.host, port, "ProxyOptions::listeners");
      if (!fd.ok()) {
        for (auto& sockets : per_worker)
          for (auto& s : sockets) close(s.fd);
        return fd.status();
      }
      port = h2::BoundPort(*fd);  // port 0: the others join the port the first one got
      per_worker[w].push_back({*fd, &l});
    }
    ports_.push_back(port);
  }
  for (int w = 0; w < options_.workers; ++w) {
    workers_.push_back(std::make_unique<Worker>(w, options_, registry_, balancers_, stats_,
                                                      downstream_tls_.get(), upstream_tls_.get()));
    if (auto status = workers_.back()->Start(std::move(per_worker[w])); !status.ok()) return status;
  }
  started_ = true;
  return absl::OkStatus();
}

int64_t ProxyServer::Drain(std::chrono::milliseconds timeout) {
  if (!started_) return 0;
  draining_ = true;
  struct State {
    absl::Mutex mu;
    size_t idle ABSL_GUARDED_BY(mu) = 0;
  };
  auto state = std::make_shared<State>();
  for (auto& w : workers_) {
    w->PostDrain([state] {
      absl::MutexLock lock(&state->mu);
      ++state->idle;
    });
  }
  size_t total = workers_.size();
  size_t idle;
  {
    absl::MutexLock lock(&state->mu);
    auto all_idle = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) { return state->idle == total; };
    state->mu.AwaitWithTimeout(absl::Condition(&all_idle),
                               absl::FromChrono(timeout + options_.shutdown_notice_delay));
    idle = state->idle;
  }
  return static_cast<int64_t>(total - idle);
}

void ProxyServer::Stop() {
  for (auto& w : workers_) w->StopAndJoin();
  workers_.clear();
  started_ = false;
}

std::string ProxyServer::RenderMetrics() const {
  return stats_.Render() + balancers_.RenderMetrics() +
         fmt::format("# HELP podlb_proxy_registry_keys Service keys discovery holds (published, "
                     "or held by a reader).\n# TYPE podlb_proxy_registry_keys gauge\n"
                     "podlb_proxy_registry_keys {}\n",
                     registry_.SlotCount());
}

std::string ProxyServer::DebugEndpoints() {
  std::string out;
  for (auto& w : workers_) {
    auto text = std::make_shared<std::string>();
    Worker* worker = w.get();
    auto done = std::make_shared<absl::Notification>();
    worker->loop().Post([worker, text, done] {
      *text = worker->DescribeClusters();
      done->Notify();
    });
    if (done->WaitForNotificationWithTimeout(absl::Seconds(2))) out += *text;
  }
  return out;
}

}  // namespace podlb::proxy
