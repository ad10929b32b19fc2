// ServiceProxy: the sandbox's kube-proxy. For every Service with a ClusterIP and each of its TCP
// ports it keeps one TcpForwarder listening on clusterIP:port, and sends each accepted connection
// to a uniformly random ready endpoint of the Service's EndpointSlices (the slice port of the
// same name as the Service port: that is how the slice controller resolved targetPort). With
// spec.internalTrafficPolicy Local, only the endpoints on the client's node: the node of the pod
// whose podIP is the connection's source address, or the first node for a source that is no
// pod's (the host itself, 127.0.0.1). No eligible endpoint: the connection is closed at once, as
// kube-proxy's REJECT rule does. Services, ports and endpoints that change are followed; a port
// removed closes its listener.
//
// Threads: Start/Stop from one control thread. Watches of services, endpointslices and pods feed
// one reconcile thread, which alone builds forwarders and publishes each port's endpoints as an
// immutable snapshot; each forwarder's accept thread reads the snapshot without locking.
// State/WaitUntil may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "net/tcp_forwarder.h"
#include "sandbox/apiserver/resource_store.h"
#include "sandbox/controllers/nodes.h"
#include "sandbox/controllers/store_watch.h"
#include "sandbox/controllers/work_queue.h"

namespace podlb::sandbox {

struct ServiceProxyOptions {
  // The first node is where the host's own connections (not from a pod IP) come from.
  std::vector<NodeInfo> nodes = DefaultNodes();
};

// One listening Service port as the proxy serves it now.
struct ServedPort {
  std::string service;    // "namespace/name"
  std::string port_name;  // the Service port's name ("" for a single unnamed port)
  std::string address;    // "clusterIP:port"
  bool local = false;     // internalTrafficPolicy: Local
  // The ready endpoints connections go to, "ip:port@node", sorted.
  std::vector<std::string> endpoints;
};

// What the proxy serves now, for readers (tests, WaitUntil).
struct ServiceProxyState {
  std::vector<ServedPort> ports;  // sorted by address
  // Pod IP → node name, as the proxy knows it to place a client on its node. Never null.
  std::shared_ptr<const std::map<std::string, std::string>> pod_nodes =
      std::make_shared<const std::map<std::string, std::string>>();
};

class ServiceProxy {
 public:
  explicit ServiceProxy(ResourceStore& store, ServiceProxyOptions options = {});
  ~ServiceProxy();  // Stop
  ServiceProxy(const ServiceProxy&) = delete;
  ServiceProxy& operator=(const ServiceProxy&) = delete;

  absl::Status Start();
  // Stops the watches and closes every listener and forwarded connection.
  void Stop();

  ServiceProxyState State() const;
  // Blocks until `done(State())` holds (re-checked after every reconcile) or `timeout` passes;
  // returns whether it held. For tests and callers that must know a Service is being served.
  // `done` runs under the proxy's lock: it must not call back into the proxy.
  bool WaitUntil(const std::function<bool(const ServiceProxyState&)>& done,
                 std::chrono::milliseconds timeout) const;

 private:
  struct Backend {
    std::string address;  // "ip:port"
    std::string node;
  };
  // What one port's forwarder picks from; replaced whole, never changed once published.
  struct Backends {
    bool local = false;
    std::vector<Backend> ready;
  };
  using PodNodes = std::map<std::string, std::string>;  // pod IP → node name
  struct Listener {
    ServedPort served;
    std::shared_ptr<std::atomic<std::shared_ptr<const Backends>>> backends;
    std::unique_ptr<net::TcpForwarder> forwarder;
  };

  void Run();
  void ReconcileService(const std::string& key);
  // The ready endpoints of the Service's `slices` for its port `port_name`.
  static Backends ReadyEndpoints(const std::vector<nlohmann::json>& slices,
                                 const std::string& port_name, bool local);
  void RefreshPodNodes();
  // Copies the reconcile thread's view into state_ and wakes WaitUntil.
  void PublishState();
  std::unique_ptr<net::TcpForwarder> MakeForwarder(
      const std::string& ip, uint16_t port,
      std::shared_ptr<std::atomic<std::shared_ptr<const Backends>>> backends);

  ResourceStore& store_;
  const ServiceProxyOptions options_;
  WorkQueue queue_;
  std::unique_ptr<StoreWatch> service_watch_;
  std::unique_ptr<StoreWatch> slice_watch_;
  std::unique_ptr<StoreWatch> pod_watch_;
  std::thread thread_;
  // Read by every forwarder's accept thread; replaced by the reconcile thread.
  std::atomic<std::shared_ptr<const PodNodes>> pod_nodes_;
  // Reconcile thread only: "namespace/name" → "clusterIP:port" → its listener.
  std::map<std::string, std::map<std::string, Listener>> listeners_;
  // Reconcile thread only: addresses whose bind failed → the Service that wants them; logged
  // once, retried when a listener on that address closes or the Service changes.
  std::map<std::string, std::string> bind_failed_;

  bool running_ = false;  // control thread only

  mutable absl::Mutex mu_;
  ServiceProxyState state_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb::sandbox
