// The sandbox's kube-proxy on real sockets: Services in a ResourceStore, EndpointSlices naming
// real listeners on pod IPs (127.0.0.x), clients connecting to clusterIP:port (some from a pod's
// IP, as a pod on a node would). Connections spread over every ready endpoint; an endpoint turning
// not ready gets no new ones and a new endpoint gets some; internalTrafficPolicy Local keeps each
// client on its node's endpoints and closes the connection when there is none; a Service without
// endpoints closes connections at once; deleted Services and ports stop listening; headless
// Services get no listener; a port another process holds is logged and the rest is served.
#include "sandbox/network/service_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "net/tcp_forwarder.h"
#include "sandbox/apiserver/resource_store.h"
#include "sandbox/controllers/endpointslice_controller.h"
#include "sandbox/network/service_proxy.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using namespace std::chrono_literals;

constexpr auto kTimeout = 10s;

// A pod's server: answers each connection with its name and closes it.
class NamedListener {
 public:
  NamedListener(std::string name, const std::string& ip) : name_(std::move(name)), ip_(ip) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
    bound_ =
        ::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && ::listen(fd_, 64) == 0;
    socklen_t len = sizeof addr;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] {
      while (true) {
        int client = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (client < 0) return;  // shut down
        ++accepted_;
        [[maybe_unused]] auto n = ::send(client, name_.data(), name_.size(), MSG_NOSIGNAL);
        ::close(client);
      }
    });
  }
  ~NamedListener() {
    ::shutdown(fd_, SHUT_RDWR);  // wakes the blocked accept
    thread_.join();
    ::close(fd_);
  }
  bool bound() const { return bound_; }
  const std::string& ip() const { return ip_; }
  int port() const { return port_; }
  int accepted() const { return accepted_.load(); }

 private:
  const std::string name_;
  const std::string ip_;
  int fd_ = -1;
  bool bound_ = false;
  int port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

// Connects to `address` (from `source_ip` if given) and reads to EOF: the backend's name, ""
// when the proxy closed the connection without a backend, "<refused>" when nothing listens.
std::string Dial(const std::string& address, const std::string& source_ip = "") {
  int fd = net::ConnectTcp(address, source_ip);
  if (fd < 0) return "<refused>";
  std::string got;
  while (true) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(std::chrono::milliseconds(kTimeout).count())) <= 0) {
      got += "<timeout>";
      break;
    }
    char buf[256];
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    got.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return got;
}

std::map<std::string, int> DialMany(const std::string& address, int n,
                                    const std::string& source_ip = "") {
  std::map<std::string, int> counts;
  for (int i = 0; i < n; ++i) ++counts[Dial(address, source_ip)];
  return counts;
}

// A second free port, not `taken`.
int OtherFreePort(int taken) {
  int port = testing::PickFreePort();
  while (port == taken) port = testing::PickFreePort();
  return port;
}

json ServiceObject(const std::string& name, const std::string& cluster_ip,
                   const std::vector<std::pair<std::string, int>>& ports) {
  json list = json::array();
  for (const auto& [port_name, port] : ports) {
    list.push_back({{"name", port_name}, {"port", port}, {"protocol", "TCP"}});
  }
  json service = {{"metadata", {{"name", name}, {"namespace", "default"}}},
                  {"spec", {{"ports", list}}}};
  if (!cluster_ip.empty()) service["spec"]["clusterIP"] = cluster_ip;
  return service;
}

// One slice per endpoint (each listens on its own ephemeral port, so each has its own port
// list, as the slice controller groups them).
json Slice(const std::string& service, const std::string& port_name, const NamedListener& pod,
           const std::string& node, bool ready = true) {
  return {
      {"metadata",
       {{"generateName", service + "-"},
        {"namespace", "default"},
        {"labels", {{kServiceNameLabel, service}}}}},
      {"addressType", "IPv4"},
      {"ports", json::array({{{"name", port_name}, {"port", pod.port()}, {"protocol", "TCP"}}})},
      {"endpoints", json::array({{{"addresses", json::array({pod.ip()})},
                                  {"conditions", {{"ready", ready}, {"serving", ready}}},
                                  {"nodeName", node}}})}};
}

json ClientPod(const std::string& name, const std::string& ip, const std::string& node) {
  return {{"metadata", {{"name", name}, {"namespace", "default"}}},
          {"spec", {{"nodeName", node}, {"containers", json::array({{{"name", "c"}}})}}},
          {"status", {{"podIP", ip}, {"phase", "Running"}}}};
}

class ServiceProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A port free on loopback a moment ago: the Services' port, so that no other test's
    // sandbox (they use the range too) holds clusterIP:port.
    port_ = testing::PickFreePort();
    ASSERT_TRUE(proxy_.Start().ok());
  }

  std::string Create(const std::string& resource, json object) {
    auto created = store_.Create(resource, "default", std::move(object));
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? (*created)["metadata"].value("name", "") : "";
  }

  // Waits until the proxy serves `address` with exactly `n` ready endpoints.
  [[nodiscard]] ::testing::AssertionResult WaitForEndpoints(const std::string& address, size_t n) {
    bool ok = proxy_.WaitUntil(
        [&](const ServiceProxyState& state) {
          for (const auto& port : state.ports) {
            if (port.address == address) return port.endpoints.size() == n;
          }
          return false;
        },
        kTimeout);
    if (ok) return ::testing::AssertionSuccess();
    std::string served;
    for (const auto& port : proxy_.State().ports) {
      served += " " + port.address + "=" + std::to_string(port.endpoints.size());
    }
    return ::testing::AssertionFailure() << "timed out waiting for " << address << " with " << n
                                         << " endpoints; served:" << served;
  }

  [[nodiscard]] ::testing::AssertionResult WaitForNoListener(const std::string& address) {
    if (proxy_.WaitUntil(
            [&](const ServiceProxyState& state) {
              for (const auto& port : state.ports) {
                if (port.address == address) return false;
              }
              return true;
            },
            kTimeout)) {
      return ::testing::AssertionSuccess();
    }
    return ::testing::AssertionFailure() << address << " is still served";
  }

  std::string Address(const std::string& ip, int port) { return ip + ":" + std::to_string(port); }

  ResourceStore store_;
  ServiceProxy proxy_{store_};
  int port_ = 0;
};

TEST_F(ServiceProxyTest, ConnectionsSpreadOverEveryReadyEndpointAndFollowReadiness) {
  NamedListener a("a", "127.0.0.181"), b("b", "127.0.0.182"), c("c", "127.0.0.183");
  ASSERT_TRUE(a.bound() && b.bound() && c.bound());
  Create("services", ServiceObject("web", "", {{"http", port_}}));
  std::string slice_b;
  for (auto* pod : {&a, &b, &c}) {
    std::string name = Create("endpointslices", Slice("web", "http", *pod, "node-a"));
    if (pod == &b) slice_b = name;
  }
  auto service = store_.Get("services", "default", "web");
  ASSERT_TRUE(service.ok());
  std::string address = Address((*service)["spec"]["clusterIP"], port_);
  ASSERT_TRUE(WaitForEndpoints(address, 3));

  // kube-proxy picks uniformly per connection: 90 connections give each pod about 30; fewer
  // than 10 happens with probability ~1e-6.
  auto counts = DialMany(address, 90);
  EXPECT_EQ(counts.size(), 3u) << ::testing::PrintToString(counts);
  for (const char* pod : {"a", "b", "c"}) EXPECT_GE(counts[pod], 10) << pod;

  // b turns not ready: no new connection reaches it.
  auto slice = store_.Get("endpointslices", "default", slice_b);
  ASSERT_TRUE(slice.ok());
  (*slice)["endpoints"][0]["conditions"]["ready"] = false;
  ASSERT_TRUE(store_.Update("endpointslices", "default", *slice).ok());
  ASSERT_TRUE(WaitForEndpoints(address, 2));
  int b_before = b.accepted();
  counts = DialMany(address, 30);
  EXPECT_EQ(counts["b"], 0);
  EXPECT_EQ(counts["a"] + counts["c"], 30) << ::testing::PrintToString(counts);
  EXPECT_EQ(b.accepted(), b_before);

  // Scale-up: a new ready endpoint gets new connections ((2/3)^60 ≈ 3e-11 that it gets none).
  NamedListener d("d", "127.0.0.184");
  ASSERT_TRUE(d.bound());
  Create("endpointslices", Slice("web", "http", d, "node-b"));
  ASSERT_TRUE(WaitForEndpoints(address, 3));
  counts = DialMany(address, 60);
  EXPECT_GE(counts["d"], 1) << ::testing::PrintToString(counts);
  EXPECT_EQ(counts["b"], 0);
}

TEST_F(ServiceProxyTest, LocalTrafficPolicyKeepsClientsOnTheirNode) {
  NamedListener on_a("on-a", "127.0.0.185"), on_b1("on-b1", "127.0.0.186"),
      on_b2("on-b2", "127.0.0.187");
  ASSERT_TRUE(on_a.bound() && on_b1.bound() && on_b2.bound());
  Create("pods", ClientPod("client-b", "127.0.0.191", "node-b"));
  Create("pods", ClientPod("client-c", "127.0.0.192", "node-c"));
  json service = ServiceObject("local", "", {{"grpc", port_}});
  service["spec"]["internalTrafficPolicy"] = "Local";
  Create("services", service);
  Create("endpointslices", Slice("local", "grpc", on_a, "node-a"));
  Create("endpointslices", Slice("local", "grpc", on_b1, "node-b"));
  Create("endpointslices", Slice("local", "grpc", on_b2, "node-b"));
  std::string address = Address("127.0.96.1", port_);
  ASSERT_TRUE(WaitForEndpoints(address, 3));
  ASSERT_TRUE(proxy_.WaitUntil(
      [](const ServiceProxyState& state) { return state.pod_nodes->size() == 2; }, kTimeout));

  // From a pod on node-b: both node-b endpoints, never node-a's.
  auto counts = DialMany(address, 40, "127.0.0.191");
  EXPECT_EQ(counts["on-a"], 0);
  EXPECT_GE(counts["on-b1"], 1) << ::testing::PrintToString(counts);
  EXPECT_GE(counts["on-b2"], 1) << ::testing::PrintToString(counts);
  EXPECT_EQ(counts["on-b1"] + counts["on-b2"], 40);
  // From a pod on node-c, which has no endpoint: closed at once, nothing reached.
  EXPECT_EQ(Dial(address, "127.0.0.192"), "");
  // From the host (no pod's address): the first node, node-a.
  counts = DialMany(address, 10);
  EXPECT_EQ(counts["on-a"], 10) << ::testing::PrintToString(counts);
  // Cluster policy (the default) again: every endpoint for everyone.
  auto stored = store_.Get("services", "default", "local");
  ASSERT_TRUE(stored.ok());
  (*stored)["spec"].erase("internalTrafficPolicy");
  ASSERT_TRUE(store_.Update("services", "default", *stored).ok());
  ASSERT_TRUE(proxy_.WaitUntil(
      [&](const ServiceProxyState& state) {
        return state.ports.size() == 1 && !state.ports[0].local;
      },
      kTimeout));
  EXPECT_NE(Dial(address, "127.0.0.192"), "");
}

TEST_F(ServiceProxyTest, NoReadyEndpointClosesTheConnectionAtOnce) {
  NamedListener a("a", "127.0.0.188");
  ASSERT_TRUE(a.bound());
  Create("services", ServiceObject("empty", "", {{"http", port_}}));
  Create("endpointslices", Slice("empty", "http", a, "node-a", /*ready=*/false));
  std::string address = Address("127.0.96.1", port_);
  ASSERT_TRUE(WaitForEndpoints(address, 0));
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(Dial(address), "");  // accepted, then closed: not a timeout
  EXPECT_LT(std::chrono::steady_clock::now() - start, kTimeout);
  EXPECT_EQ(a.accepted(), 0);
}

TEST_F(ServiceProxyTest, DeletedServicesAndPortsStopListening) {
  NamedListener a("a", "127.0.0.189");
  ASSERT_TRUE(a.bound());
  int second_port = OtherFreePort(port_);
  Create("services", ServiceObject("web", "", {{"http", port_}, {"admin", second_port}}));
  Create("endpointslices", Slice("web", "http", a, "node-a"));
  std::string http = Address("127.0.96.1", port_);
  std::string admin = Address("127.0.96.1", second_port);
  ASSERT_TRUE(WaitForEndpoints(http, 1));
  ASSERT_TRUE(WaitForEndpoints(admin, 0));  // no slice has an "admin" port
  EXPECT_EQ(Dial(http), "a");
  EXPECT_EQ(Dial(admin), "");

  // The admin port removed: its listener closes, the other stays.
  auto service = store_.Get("services", "default", "web");
  ASSERT_TRUE(service.ok());
  (*service)["spec"]["ports"].erase(1);
  ASSERT_TRUE(store_.Update("services", "default", *service).ok());
  ASSERT_TRUE(WaitForNoListener(admin));
  EXPECT_EQ(Dial(admin), "<refused>");
  EXPECT_EQ(Dial(http), "a");

  ASSERT_TRUE(store_.Delete("services", "default", "web").ok());
  ASSERT_TRUE(WaitForNoListener(http));
  EXPECT_EQ(Dial(http), "<refused>");
  EXPECT_TRUE(proxy_.State().ports.empty());
}

TEST_F(ServiceProxyTest, HeadlessServicesGetNoListener) {
  NamedListener a("a", "127.0.0.190");
  ASSERT_TRUE(a.bound());
  Create("services", ServiceObject("headless", "None", {{"http", port_}}));
  Create("endpointslices", Slice("headless", "http", a, "node-a"));
  // A later Service is served once the proxy has seen the headless one (one watch, in order).
  Create("services", ServiceObject("later", "", {{"http", port_}}));
  ASSERT_TRUE(WaitForEndpoints(Address("127.0.96.1", port_), 0));
  auto ports = proxy_.State().ports;
  ASSERT_EQ(ports.size(), 1u);
  EXPECT_EQ(ports[0].service, "default/later");
}

TEST_F(ServiceProxyTest, APortHeldElsewhereIsReportedAndTheRestServed) {
  NamedListener a("a", "127.0.0.193");
  ASSERT_TRUE(a.bound());
  // Another process holds 127.0.96.1:port_ before the Service exists.
  net::TcpForwarder squatter("127.0.96.1", static_cast<uint16_t>(port_),
                             [](const std::string&) { return std::nullopt; });
  ASSERT_TRUE(squatter.Start().ok());
  int admin_port = OtherFreePort(port_);
  std::string http = Address("127.0.96.1", port_);
  std::string admin = Address("127.0.96.1", admin_port);
  ::testing::internal::CaptureStderr();
  Create("services", ServiceObject("web", "", {{"http", port_}, {"admin", admin_port}}));
  Create("endpointslices", Slice("web", "admin", a, "node-a"));
  Create("services", ServiceObject("other", "", {{"http", port_}}));
  ASSERT_TRUE(WaitForEndpoints(admin, 1));                         // the Service's other port
  ASSERT_TRUE(WaitForEndpoints(Address("127.0.96.2", port_), 0));  // another Service
  std::string log = ::testing::internal::GetCapturedStderr();
  std::string line =
      "service proxy: Service default/web port \"http\" is not reachable at its ClusterIP: tcp "
      "forwarder: cannot listen on " +
      http + ": Address already in use";
  EXPECT_THAT(log, ::testing::HasSubstr(line));
  EXPECT_EQ(log.find(line), log.rfind(line)) << "logged once, not at every reconcile: " << log;
  EXPECT_EQ(Dial(admin), "a");
  EXPECT_EQ(Dial(http), "");  // the squatter's answer

  // Once the address is free, the next change of the Service binds it.
  squatter.Stop();
  Create("endpointslices", Slice("web", "http", a, "node-b"));
  ASSERT_TRUE(WaitForEndpoints(http, 1));
  EXPECT_EQ(Dial(http), "a");
}

}  // namespace
}  // namespace podlb::sandbox
