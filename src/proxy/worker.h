// Worker: one thread running one EventLoop. It owns its SO_REUSEPORT listener sockets, every
// downstream connection it accepted (a connection never changes threads), and its own clusters
// with their upstream sessions. Other threads talk to it only through Post* methods, which run
// on the loop. Endpoint snapshots are read lock-free from Registry slots. Its connections and
// clusters see only what they use: DownstreamContext (the worker as their DownstreamOwner) and
// UpstreamContext.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/registry.h"
#include "core/split_mix64.h"
#include "proxy/cluster.h"
#include "proxy/downstream_session.h"
#include "h2/event_loop.h"
#include "proxy/proxy_options.h"
#include "proxy/proxy_stats.h"
#include "proxy/service_balancers.h"
#include "proxy/upstream_context.h"

namespace podlb::proxy {

using h2::EventLoop;
using h2::IoHandler;
using h2::Clock;

struct ListenSocket {
  int fd = -1;
  const ListenerConfig* config = nullptr;
};

class Worker final : public DownstreamOwner {
 public:
  // `downstream_tls` / `upstream_tls`: null for h2c; owned by the ProxyServer, outlive the worker.
  // `balancers`: the process-wide balancing state, shared with the other workers.
  Worker(int index, const ProxyOptions& options, Registry& registry, ServiceBalancers& balancers,
         ProxyStats& stats, SSL_CTX* downstream_tls, SSL_CTX* upstream_tls);
  ~Worker() override;

  // Takes ownership of `sockets` and starts the thread.
  absl::Status Start(std::vector<ListenSocket> sockets);
  // Stops accepting, sends the shutdown notice, then (after options.shutdown_notice_delay) the
  // final GOAWAY; `on_idle` runs on the worker once no stream is in flight.
  void PostDrain(std::function<void()> on_idle);
  void StopAndJoin();

  // Post() work here to run on the worker thread.
  EventLoop& loop() { return loop_; }
  // What a DownstreamSession of this worker is built with (the fuzzer builds one by hand).
  const DownstreamContext& downstream_context() const { return downstream_context_; }

  // Worker thread.
  std::string DescribeClusters();
  // DownstreamOwner.
  Cluster* ClusterForKey(const ServiceKey& key) override;
  Cluster* ClusterForAuthority(std::string_view authority, std::string* error) override;
  void OnStreamOpened() override { ++active_streams_; }
  void OnStreamClosed() override;
  void OnDownstreamClosed(DownstreamSession* session) override;

 private:
  class Listener;
  void Accept(const ListenSocket& socket);
  void Tick();
  // Frees the clusters of Services discovery no longer knows, once nothing refers to them.
  void RetireClusters();
  void CheckIdle();

  int index_;
  const ProxyOptions& options_;
  Registry& registry_;
  ServiceBalancers& balancers_;
  ProxyStats& stats_;
  SSL_CTX* downstream_tls_;
  EventLoop loop_;
  SplitMix64 random_;
  const UpstreamConnectionConfig upstream_connection_;
  const UpstreamContext upstream_context_;
  const DownstreamContext downstream_context_;
  std::thread thread_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unordered_map<DownstreamSession*, std::unique_ptr<DownstreamSession>> downstreams_;
  std::map<ServiceKey, std::unique_ptr<Cluster>> clusters_;
  std::unordered_map<std::string, Cluster*> authority_cache_;
  int64_t active_streams_ = 0;
  bool draining_ = false;
  std::function<void()> on_idle_;
};

}  // namespace podlb::proxy
