// NativeAdsFleet against a scripted nghttp2 server on loopback: what it sends (the subscription,
// then ACKs carrying the response's version and nonce, decoded as a real server decodes them),
// a 200 KB response through its flow-control windows, and each way a stream can fail: the stream
// counts as failed, with a reason naming the cause, and nothing crashes.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "ads_stream_check.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "native_ads_client.h"
#include "xds/type_urls.h"

namespace podlb::bench {
namespace {

using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;
using ::testing::HasSubstr;

// What the server does once a stream's first request has arrived.
enum class Script {
  kAnswer,       // an EDS response; then records the ACK
  kGrpcError,    // trailers-only, grpc-status 13
  kRstStream,    // RST_STREAM INTERNAL_ERROR
  kGoaway,       // GOAWAY ENHANCE_YOUR_CALM with debug data
  kReset,        // the TCP connection reset (SO_LINGER 0)
  kBadFrame,     // a frame longer than SETTINGS_MAX_FRAME_SIZE allows
  kCompressed,   // a gRPC message with the compressed flag set
};

std::string Framed(const std::string& message, uint8_t flag = 0) {
  uint32_t n = static_cast<uint32_t>(message.size());
  std::string out = {static_cast<char>(flag), static_cast<char>(n >> 24),
                     static_cast<char>(n >> 16), static_cast<char>(n >> 8), static_cast<char>(n)};
  return out + message;
}

// Service s at generation `gen` with `endpoints` endpoints, as xds_fanout's file describes it.
DiscoveryResponse EdsResponse(int s, int gen, int endpoints) {
  ClusterLoadAssignment cla;
  cla.set_cluster_name(ServiceName(s));
  auto* locality = cla.add_endpoints();
  for (int j = 0; j < endpoints; ++j) {
    auto* address = locality->add_lb_endpoints()->mutable_endpoint()->mutable_address()
                        ->mutable_socket_address();
    address->set_address(EndpointAddress(s, j));
    address->set_port_value(static_cast<uint32_t>(kBasePort + gen));
  }
  DiscoveryResponse r;
  r.set_type_url(std::string(podlb::xds::kClusterLoadAssignmentType));
  r.set_version_info("version-7");
  r.set_nonce("nonce-42");
  r.add_resources()->PackFrom(cla);
  return r;
}

// One connection at a time, driven on its own thread with poll(); nghttp2 frames the HTTP/2.
class ScriptedServer {
 public:
  ScriptedServer(Script script, int endpoints) : script_(script), endpoints_(endpoints) {
    listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    EXPECT_EQ(bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len), 0);
    EXPECT_EQ(listen(listen_fd_, 16), 0);
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~ScriptedServer() {
    stop_.store(true);
    thread_.join();
    close(listen_fd_);
  }
  int port() const { return port_; }

  // The requests decoded so far, in order, once there are `n` (or after 10 s).
  std::vector<DiscoveryRequest> AwaitRequests(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return requests_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return requests_;
  }

 private:
  void Serve() {
    pollfd p{listen_fd_, POLLIN, 0};
    while (!stop_.load()) {
      if (poll(&p, 1, 20) <= 0) continue;
      int fd = accept(listen_fd_, nullptr, nullptr);
      if (fd >= 0) ServeConnection(fd);
    }
  }

  void ServeConnection(int fd) {
    fd_ = fd;
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, OnData);
    nghttp2_session_server_new(&session_, cbs, this);
    nghttp2_session_callbacks_del(cbs);
    nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, nullptr, 0);
    char buf[65536];
    pollfd p{fd, POLLIN, 0};
    while (!stop_.load() && fd_ >= 0) {
      if (!Flush()) break;
      if (poll(&p, 1, 20) <= 0) continue;
      ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) break;
      if (nghttp2_session_mem_recv(session_, reinterpret_cast<uint8_t*>(buf),
                                   static_cast<size_t>(n)) < 0) {
        break;
      }
    }
    nghttp2_session_del(session_);
    session_ = nullptr;
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }

  bool Flush() {
    const uint8_t* data;
    ssize_t n;
    while ((n = nghttp2_session_mem_send(session_, &data)) > 0) {
      if (write(fd_, data, static_cast<size_t>(n)) != n) return false;
    }
    return n == 0;
  }

  static int OnData(nghttp2_session*, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) {
    auto* self = static_cast<ScriptedServer*>(user);
    std::string& in = self->in_[id];
    in.append(reinterpret_cast<const char*>(data), len);
    while (in.size() >= 5) {
      uint32_t n = static_cast<uint8_t>(in[1]) << 24 | static_cast<uint8_t>(in[2]) << 16 |
                   static_cast<uint8_t>(in[3]) << 8 | static_cast<uint8_t>(in[4]);
      if (in.size() < 5 + n) break;
      DiscoveryRequest r;
      EXPECT_TRUE(r.ParseFromArray(in.data() + 5, static_cast<int>(n)));
      in.erase(0, 5 + n);
      bool first;
      {
        absl::MutexLock lock(&self->mu_);
        first = self->requests_.empty();
        self->requests_.push_back(std::move(r));
      }
      if (first) self->Act(id);
    }
    return 0;
  }

  void Act(int32_t id) {
    auto nv = [](const char* n, const char* v) {
      return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n)),
                        reinterpret_cast<uint8_t*>(const_cast<char*>(v)), strlen(n), strlen(v),
                        NGHTTP2_NV_FLAG_NONE};
    };
    const nghttp2_nv headers[] = {nv(":status", "200"), nv("content-type", "application/grpc")};
    switch (script_) {
      case Script::kAnswer:
        body_ = Framed(EdsResponse(0, 3, endpoints_).SerializeAsString());
        Respond(id, headers, 2);
        break;
      case Script::kCompressed:
        body_ = Framed(EdsResponse(0, 3, endpoints_).SerializeAsString(), 1);
        Respond(id, headers, 2);
        break;
      case Script::kGrpcError: {
        const nghttp2_nv trailers_only[] = {nv(":status", "200"),
                                            nv("content-type", "application/grpc"),
                                            nv("grpc-status", "13"), nv("grpc-message", "boom")};
        nghttp2_submit_response(session_, id, trailers_only, 4, nullptr);
        break;
      }
      case Script::kRstStream:
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_INTERNAL_ERROR);
        break;
      case Script::kGoaway: {
        const char debug[] = "too many streams";
        nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_ENHANCE_YOUR_CALM,
                              reinterpret_cast<const uint8_t*>(debug), sizeof debug - 1);
        break;
      }
      case Script::kReset: {
        linger l{1, 0};
        setsockopt(fd_, SOL_SOCKET, SO_LINGER, &l, sizeof l);
        close(fd_);
        fd_ = -1;
        break;
      }
      case Script::kBadFrame: {
        Flush();
        // A DATA frame header announcing 16 MiB - 1 bytes on stream 1: over the 1 MiB
        // SETTINGS_MAX_FRAME_SIZE the client announced.
        const unsigned char frame[] = {0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01};
        (void)!write(fd_, frame, sizeof frame);
        break;
      }
    }
  }

  void Respond(int32_t id, const nghttp2_nv* headers, size_t n) {
    nghttp2_data_provider provider{};
    provider.source.ptr = this;
    provider.read_callback = [](nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                                uint32_t*, nghttp2_data_source* source, void*) -> ssize_t {
      auto* self = static_cast<ScriptedServer*>(source->ptr);
      if (self->body_offset_ == self->body_.size()) return NGHTTP2_ERR_DEFERRED;  // stay open
      size_t k = std::min(length, self->body_.size() - self->body_offset_);
      memcpy(buf, self->body_.data() + self->body_offset_, k);
      self->body_offset_ += k;
      return static_cast<ssize_t>(k);
    };
    nghttp2_submit_response(session_, id, headers, n, &provider);
  }

  const Script script_;
  const int endpoints_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  // Server thread only.
  int fd_ = -1;
  nghttp2_session* session_ = nullptr;
  std::map<int32_t, std::string> in_;
  std::string body_;
  size_t body_offset_ = 0;
  absl::Mutex mu_;
  std::vector<DiscoveryRequest> requests_ ABSL_GUARDED_BY(mu_);
};

// One stream watching svc0, on one connection to `server`.
struct OneStream {
  OneStream(const ScriptedServer& server, int endpoints) : arrivals(1) {
    arrivals.expected[0] = 1;
    std::vector<std::unique_ptr<AdsStreamCheck>> checks;
    checks.push_back(std::make_unique<AdsStreamCheck>(7, std::vector<int>{0}, endpoints,
                                                      &arrivals));
    NativeAdsOptions options;
    options.port = server.port();
    options.connections = 1;
    fleet = std::make_unique<NativeAdsFleet>(options, std::move(checks), &arrivals);
    EXPECT_TRUE(fleet->Start().ok());
  }
  // True once `done` holds, false after 10 s (a failure, not a retry).
  template <typename F>
  bool Await(F done) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (!done()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
  }
  Arrivals arrivals;
  std::unique_ptr<NativeAdsFleet> fleet;
};

TEST(NativeAdsClientTest, SubscribesChecksAndAcksWithTheResponsesVersionAndNonce) {
  ScriptedServer server(Script::kAnswer, 10);
  OneStream stream(server, 10);
  // CDS, EDS, then the ACK of the EDS response.
  std::vector<DiscoveryRequest> requests = server.AwaitRequests(3);
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].type_url(), podlb::xds::kClusterType);
  EXPECT_EQ(requests[0].node().id(), "bench-7");
  EXPECT_THAT(requests[0].resource_names(), ::testing::ElementsAre(ServiceName(0)));
  EXPECT_EQ(requests[1].type_url(), podlb::xds::kClusterLoadAssignmentType);
  EXPECT_FALSE(requests[1].has_node());
  const DiscoveryRequest& ack = requests[2];
  EXPECT_EQ(ack.type_url(), podlb::xds::kClusterLoadAssignmentType);
  EXPECT_EQ(ack.version_info(), "version-7");
  EXPECT_EQ(ack.response_nonce(), "nonce-42");
  EXPECT_THAT(ack.resource_names(), ::testing::ElementsAre(ServiceName(0)));
  EXPECT_FALSE(ack.has_node());
  // Generations 0..3 of svc0 arrived (having 3 means having every one before it).
  EXPECT_NE(stream.arrivals.done_ns[stream.arrivals.Slot(0, 3)].load(), 0);
  EXPECT_EQ(stream.arrivals.responses.load(), 1);
  EXPECT_EQ(stream.arrivals.bad_content.load(), 0);
  stream.fleet->Stop();  // closing our own streams is not a failure
  EXPECT_EQ(stream.arrivals.streams_failed.load(), 0);
  EXPECT_EQ(stream.fleet->FirstError(), "");
}

TEST(NativeAdsClientTest, A200KilobyteResponseIsNotHeldByFlowControl) {
  // 5,000 endpoints: a ~200 KB ClusterLoadAssignment, over HTTP/2's default 64 KB windows.
  ScriptedServer server(Script::kAnswer, 5000);
  OneStream stream(server, 5000);
  EXPECT_EQ(server.AwaitRequests(3).size(), 3u);
  EXPECT_NE(stream.arrivals.done_ns[stream.arrivals.Slot(0, 3)].load(), 0);
  EXPECT_EQ(stream.arrivals.bad_content.load(), 0);
  EXPECT_EQ(stream.arrivals.streams_failed.load(), 0);
}

struct FailureCase {
  Script script;
  const char* reason;
};

class NativeAdsClientFailureTest : public ::testing::TestWithParam<FailureCase> {};

TEST_P(NativeAdsClientFailureTest, TheStreamFailsWithTheReason) {
  ScriptedServer server(GetParam().script, 10);
  OneStream stream(server, 10);
  ASSERT_TRUE(stream.Await([&] { return stream.arrivals.streams_failed.load() > 0; }))
      << "the stream did not fail";
  EXPECT_THAT(stream.fleet->FirstError(), HasSubstr(GetParam().reason));
  stream.fleet->Stop();
  EXPECT_EQ(stream.arrivals.streams_failed.load(), 1);
  EXPECT_EQ(stream.arrivals.regressions.load(), 0);
}

INSTANTIATE_TEST_SUITE_P(
    Causes, NativeAdsClientFailureTest,
    ::testing::Values(FailureCase{Script::kGrpcError, "grpc-status 13: boom"},
                      FailureCase{Script::kRstStream, "RST_STREAM INTERNAL_ERROR"},
                      FailureCase{Script::kGoaway, "GOAWAY ENHANCE_YOUR_CALM: too many streams"},
                      FailureCase{Script::kReset, "Connection reset by peer"},
                      FailureCase{Script::kBadFrame, "bad HTTP/2 from the server"},
                      FailureCase{Script::kCompressed, "compressed message"}));

}  // namespace
}  // namespace podlb::bench
