// Worker: one thread running one EventLoop. It owns its SO_REUSEPORT listener sockets, every
// downstream connection it accepted (a connection never changes threads), and its own clusters
// with their upstream sessions. Other threads talk to it only through Post* methods, which run
// on the loop. Endpoint snapshots are read lock-free from Registry slots.
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
#include "proxy/cluster.h"
#include "proxy/event_loop.h"
#include "proxy/proxy_options.h"
#include "proxy/proxy_stats.h"
#include "proxy/service_balancers.h"

namespace podlb::proxy {

class DownstreamSession;

struct ListenSocket {
  int fd = -1;
  const ListenerConfig* config = nullptr;
};

class Worker {
 public:
  // `downstream_tls` / `upstream_tls`: null for h2c; owned by the ProxyServer, outlive the worker.
  // `balancers`: the process-wide balancing state, shared with the other workers.
  Worker(int index, const ProxyOptions& options, Registry& registry, ServiceBalancers& balancers,
         ProxyStats& stats, SSL_CTX* downstream_tls, SSL_CTX* upstream_tls);
  ~Worker();

  // Takes ownership of `sockets` and starts the thread.
  absl::Status Start(std::vector<ListenSocket> sockets);
  // Stops accepting, sends the shutdown notice, then (after options.shutdown_notice_delay) the
  // final GOAWAY; `on_idle` runs on the worker once no stream is in flight.
  void PostDrain(std::function<void()> on_idle);
  void StopAndJoin();

  // Worker thread.
  EventLoop& loop() { return loop_; }
  const ProxyOptions& options() const { return options_; }
  ProxyStats& stats() { return stats_; }
  Registry& registry() { return registry_; }
  SSL_CTX* upstream_tls() const { return upstream_tls_; }
  Cluster* ClusterForKey(const ServiceKey& key, std::string* error);
  Cluster* ClusterForAuthority(std::string_view authority, std::string* error);
  void OnStreamOpened() { ++active_streams_; }
  void OnStreamClosed();
  void OnDownstreamClosed(DownstreamSession* session);
  std::string DescribeClusters();
  uint64_t NextRandom();

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
  SSL_CTX* upstream_tls_;
  EventLoop loop_;
  std::thread thread_;
  std::vector<std::unique_ptr<Listener>> listeners_;
  std::unordered_map<DownstreamSession*, std::unique_ptr<DownstreamSession>> downstreams_;
  std::map<ServiceKey, std::unique_ptr<Cluster>> clusters_;
  std::unordered_map<std::string, Cluster*> authority_cache_;
  int64_t active_streams_ = 0;
  bool draining_ = false;
  std::function<void()> on_idle_;
  uint64_t rng_state_;
};

}  // namespace podlb::proxy
