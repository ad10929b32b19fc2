// The proxy data path against real grpc++ backends on 127.0.0.2/3/4, fed through a Registry
// (and once through a FileSource): balance, discovery of new pods, all RPC kinds with flow
// control, deadlines, upstream failures and drain.
#include <algorithm>
#include <map>
#include <set>
#include <thread>

#include "discovery/file/file_source.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/proxy_server.h"
#include "proxy/test_backend.h"
#include "support/filler_endpoints.h"
#include "support/process.h"

namespace podlb::proxy {
namespace {

using ::podlb::testing::ProxyStub;
using ::podlb::testing::TestBackend;
using ::testing::HasSubstr;

const ServiceKey kGreeter{"default", "greeter", "50051"};

class ProxyTest : public ::testing::Test {
 protected:
  void StartBackends(int n) {
    for (int i = 0; i < n; ++i) {
      backends_.push_back(std::make_unique<TestBackend>("pod-" + std::to_string(i),
                                                        "127.0.0." + std::to_string(2 + i % 3)));
    }
    Publish();
  }
  void Publish() {
    std::vector<Endpoint> endpoints;
    for (auto& b : backends_)
      if (b) endpoints.push_back(b->AsEndpoint());
    registry_.Publish({kGreeter}, endpoints);
  }
  void StartProxy(ProxyOptions options = {}) {
    if (options.listeners.empty()) {
      options.listeners.push_back({.host = "127.0.0.1", .port = 0, .service = kGreeter});
      options.listeners.push_back({.host = "127.0.0.1", .port = 0, .service = std::nullopt});
    }
    proxy_ = std::make_unique<ProxyServer>(options, registry_);
    ASSERT_TRUE(proxy_->Start().ok());
  }
  int port() const { return proxy_->ports()[0]; }
  int authority_port() const { return proxy_->ports()[1]; }

  std::string CallUnary(grpc::testing::TestService::Stub& stub, grpc::Status* status = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    grpc::Status s = stub.UnaryCall(&context, request, &response);
    if (status != nullptr) *status = s;
    EXPECT_TRUE(status != nullptr || s.ok()) << s.error_code() << " " << s.error_message();
    return response.hostname();
  }

  Registry registry_;
  std::vector<std::unique_ptr<TestBackend>> backends_;
  std::unique_ptr<ProxyServer> proxy_;
};

TEST_F(ProxyTest, OneChannelSpreadsUnaryCallsOverThreeBackends) {
  StartBackends(3);
  // Round robin, so the spread is exact: what this proves is that every call of one channel is
  // picked anew. The data path's default (peak EWMA) rightly favours whichever backend answered
  // faster, which on a loaded machine is any of them (a 1.2 bound on it failed 25 runs in 40
  // under load); its choices are tested with controlled latencies in tests/balancing.
  ProxyOptions options;
  options.balancing.lb_policy = balancing::PolicyKind::kRoundRobin;
  StartProxy(options);
  auto stub = ProxyStub(port());
  std::map<std::string, int> counts;
  for (int i = 0; i < 300; ++i) ++counts[CallUnary(*stub)];
  ASSERT_EQ(counts.size(), 3u);
  for (auto& [name, n] : counts) EXPECT_EQ(n, 100) << name;
  std::string metrics = proxy_->stats().Render();
  EXPECT_THAT(metrics,
              HasSubstr("podlb_proxy_upstream_requests_total{service=\"default/greeter:50051\""));
}

TEST_F(ProxyTest, ConcurrentCallsBalanceOnOutstandingStreams) {
  StartBackends(3);
  StartProxy();
  auto stub = ProxyStub(port());
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        grpc::Status status;
        CallUnary(*stub, &status);
        if (!status.ok()) ++failures;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  for (auto& b : backends_) EXPECT_GT(b->calls(), 60) << b->name();
}

TEST_F(ProxyTest, NewEndpointTakesCallsWithinOneSecond) {
  StartBackends(2);
  StartProxy();
  auto stub = ProxyStub(port());
  for (int i = 0; i < 20; ++i) CallUnary(*stub);
  backends_.push_back(std::make_unique<TestBackend>("pod-new", "127.0.0.4"));
  auto published = std::chrono::steady_clock::now();
  Publish();
  bool seen = false;
  while (!seen && std::chrono::steady_clock::now() - published < std::chrono::seconds(1))
    seen = CallUnary(*stub) == "pod-new";
  EXPECT_TRUE(seen) << "the new endpoint took no call within 1 s";
}

TEST_F(ProxyTest, RemovedAndDrainingEndpointsTakeNoNewCalls) {
  StartBackends(3);
  StartProxy();
  auto stub = ProxyStub(port());
  for (int i = 0; i < 10; ++i) CallUnary(*stub);
  std::vector<Endpoint> endpoints{backends_[0]->AsEndpoint(), backends_[1]->AsEndpoint()};
  endpoints[1].ready = false;
  endpoints[1].terminating = true;  // serving + terminating = draining
  registry_.Publish({kGreeter}, endpoints);
  for (int i = 0; i < 30; ++i) EXPECT_EQ(CallUnary(*stub), "pod-0");
}

TEST_F(ProxyTest, RoutesByAuthority) {
  StartBackends(1);
  StartProxy();
  auto stub = ProxyStub(authority_port(), "greeter.default.svc.cluster.local:50051");
  EXPECT_EQ(CallUnary(*stub), "pod-0");
  auto short_form = ProxyStub(authority_port(), "greeter.default:50051");
  EXPECT_EQ(CallUnary(*short_form), "pod-0");
  auto unknown = ProxyStub(authority_port(), "nope.default:50051");
  grpc::Status status;
  CallUnary(*unknown, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("default/nope:50051"));
}

// A gauge of the proxy's /metrics text (-1 if absent).
double Gauge(const std::string& text, const std::string& name) {
  size_t at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

TEST_F(ProxyTest, DeletedServiceLeavesNothingInTheProxy) {
  StartBackends(1);
  ProxyOptions options;
  options.workers = 2;
  StartProxy(options);
  const std::vector<ServiceKey> temp = {{"default", "temp", "50051"}, {"default", "temp", "grpc"}};
  registry_.Publish(temp, {backends_[0]->AsEndpoint()});
  // Calls on fresh connections, so both workers route it (SO_REUSEPORT spreads connections).
  for (int i = 0; i < 8; ++i) {
    auto stub = ProxyStub(authority_port(), "temp.default:50051");
    EXPECT_EQ(CallUnary(*stub), "pod-0");
  }
  std::string text = proxy_->RenderMetrics();
  EXPECT_GE(Gauge(text, "podlb_proxy_clusters"), 1);
  EXPECT_EQ(Gauge(text, "podlb_proxy_services"), 1);
  EXPECT_EQ(Gauge(text, "podlb_proxy_registry_keys"), 3);

  // Deleted: its clusters, balancing state, host stats and Registry entries all go (the workers
  // free what no stream uses on their once-a-second tick).
  registry_.Remove(temp);
  auto gone = [&] {
    text = proxy_->RenderMetrics();
    return Gauge(text, "podlb_proxy_clusters") == 0 && Gauge(text, "podlb_proxy_services") == 0 &&
           Gauge(text, "podlb_proxy_upstream_hosts") == 0 &&
           Gauge(text, "podlb_proxy_registry_keys") == 1 &&
           text.find("service=\"default/temp:50051\"") == std::string::npos;
  };
  EXPECT_TRUE(::podlb::testing::WaitFor(gone, std::chrono::seconds(10), "the deleted Service to go"))
      << text;
  auto stub = ProxyStub(authority_port(), "temp.default:50051");
  grpc::Status status;
  CallUnary(*stub, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("no endpoints known"));

  // Created again: routed again, on the same connection.
  registry_.Publish(temp, {backends_[0]->AsEndpoint()});
  EXPECT_EQ(CallUnary(*stub), "pod-0");
}

TEST_F(ProxyTest, NoEndpointsIsUnavailableWithAMessage) {
  StartProxy();
  auto stub = ProxyStub(port());
  grpc::Status status;
  CallUnary(*stub, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("default/greeter:50051"));
}

TEST_F(ProxyTest, ErrorStatusesAndTrailersPassThrough) {
  StartBackends(1);
  StartProxy();
  auto stub = ProxyStub(port());
  grpc::ClientContext context;
  grpc::testing::SimpleRequest request;
  request.mutable_response_status()->set_code(5);
  request.mutable_response_status()->set_message("no such greeting");
  grpc::testing::SimpleResponse response;
  grpc::Status status = stub->UnaryCall(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(status.error_message(), "no such greeting");
}

TEST_F(ProxyTest, ServerStreamingClientStreamingAndBidiPassThrough) {
  StartBackends(1);
  StartProxy();
  auto stub = ProxyStub(port());
  {
    grpc::ClientContext context;
    grpc::testing::StreamingOutputCallRequest request;
    for (int i = 0; i < 50; ++i) request.add_response_parameters()->set_size(10'000 + i);
    auto reader = stub->StreamingOutputCall(&context, request);
    grpc::testing::StreamingOutputCallResponse response;
    int n = 0;
    while (reader->Read(&response)) EXPECT_EQ(response.payload().body().size(), 10'000u + n++);
    EXPECT_EQ(n, 50);
    EXPECT_TRUE(reader->Finish().ok());
  }
  {
    grpc::ClientContext context;
    grpc::testing::StreamingInputCallResponse response;
    auto writer = stub->StreamingInputCall(&context, &response);
    grpc::testing::StreamingInputCallRequest request;
    request.mutable_payload()->set_body(std::string(100'000, 'a'));
    for (int i = 0; i < 20; ++i) ASSERT_TRUE(writer->Write(request));
    writer->WritesDone();
    EXPECT_TRUE(writer->Finish().ok());
    EXPECT_EQ(response.aggregated_payload_size(), 2'000'000);
  }
  {
    grpc::ClientContext context;
    auto stream = stub->FullDuplexCall(&context);
    for (int i = 0; i < 20; ++i) {
      grpc::testing::StreamingOutputCallRequest request;
      request.add_response_parameters()->set_size(i);
      ASSERT_TRUE(stream->Write(request));
      grpc::testing::StreamingOutputCallResponse response;
      ASSERT_TRUE(stream->Read(&response));
      EXPECT_EQ(response.payload().body(), "pod-0:" + std::string(i, 'z'));
    }
    stream->WritesDone();
    EXPECT_TRUE(stream->Finish().ok());
  }
}

TEST_F(ProxyTest, SlowReaderSlowsTheWriterInsteadOfFillingTheProxy) {
  StartBackends(1);
  StartProxy();
  auto stub = ProxyStub(port());
  grpc::ClientContext context;
  grpc::testing::StreamingOutputCallRequest request;
  constexpr int kMessages = 200;
  constexpr int kSize = 128 * 1024;  // 25 MiB in all
  for (int i = 0; i < kMessages; ++i) request.add_response_parameters()->set_size(kSize);
  auto reader = stub->StreamingOutputCall(&context, request);
  grpc::testing::StreamingOutputCallResponse response;
  ASSERT_TRUE(reader->Read(&response));
  // The reader now stalls. The backend may fill the windows on the way (client, proxy both
  // sides, its own transport) and must then block: wait until its progress stops.
  int64_t last = -1;
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        int64_t now = backends_[0]->bytes_written();
        bool stalled = now == last;
        last = now;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a slow reader's pause
        return stalled;
      },
      std::chrono::seconds(10), "the backend to block on flow control"));
  EXPECT_LT(backends_[0]->bytes_written(), 12LL * 1024 * 1024)
      << "the writer ran ahead of a stalled reader: flow control is not end to end";
  int n = 1;
  while (reader->Read(&response)) ++n;
  EXPECT_EQ(n, kMessages);
  EXPECT_TRUE(reader->Finish().ok());
}

TEST_F(ProxyTest, DeadlineExceededAndTheUpstreamCallIsCancelled) {
  StartBackends(1);
  StartProxy();
  auto stub = ProxyStub(port());
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(300));
  grpc::testing::SimpleRequest request;
  request.set_fill_username(true);  // the backend waits until cancelled
  grpc::testing::SimpleResponse response;
  grpc::Status status = stub->UnaryCall(&context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  EXPECT_TRUE(testing::WaitFor([&] { return backends_[0]->cancelled() == 1; },
                               std::chrono::seconds(5), "the backend call to be cancelled"));
  EXPECT_EQ(CallUnary(*stub), "pod-0");  // the connection is fine afterwards
}

TEST_F(ProxyTest, BackendKilledMidCallFailsThatCallOnlyWithUnavailable) {
  StartBackends(3);
  StartProxy();
  auto stub = ProxyStub(port());
  for (int i = 0; i < 9; ++i) CallUnary(*stub);
  // A slow stream on whichever backend P2C picks; kill that backend mid-stream.
  grpc::ClientContext context;
  grpc::testing::StreamingOutputCallRequest request;
  for (int i = 0; i < 100; ++i) {
    auto* p = request.add_response_parameters();
    p->set_size(100);
    p->set_interval_us(20'000);
  }
  auto reader = stub->StreamingOutputCall(&context, request);
  grpc::testing::StreamingOutputCallResponse response;
  ASSERT_TRUE(reader->Read(&response));
  TestBackend* victim = nullptr;
  for (auto& b : backends_)
    if (b->output_streams() > 0) victim = b.get();
  ASSERT_NE(victim, nullptr);
  victim->Kill();
  while (reader->Read(&response)) {
  }
  grpc::Status status = reader->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE) << status.error_message();
  // Everyone else keeps working, including calls that P2C would have sent to the dead pod.
  for (int i = 0; i < 30; ++i) {
    grpc::Status s;
    CallUnary(*stub, &s);
    EXPECT_TRUE(s.ok()) << s.error_message();
  }
}

TEST_F(ProxyTest, UpstreamStreamLimitOpensAnotherConnection) {
  backends_.push_back(std::make_unique<TestBackend>("pod-0", "127.0.0.2", /*max streams*/ 2));
  Publish();
  StartProxy();
  auto stub = ProxyStub(port());
  CallUnary(*stub);  // the upstream connection is up and its SETTINGS (limit 2) are known
  struct Call {
    grpc::ClientContext context;
    std::unique_ptr<grpc::ClientReader<grpc::testing::StreamingOutputCallResponse>> reader;
  };
  std::vector<std::unique_ptr<Call>> calls;
  grpc::testing::StreamingOutputCallRequest request;
  for (int i = 0; i < 20; ++i) {
    auto* p = request.add_response_parameters();
    p->set_size(10);
    p->set_interval_us(i == 0 ? 0 : 10'000);
  }
  for (int c = 0; c < 3; ++c) {
    calls.push_back(std::make_unique<Call>());
    calls.back()->reader = stub->StreamingOutputCall(&calls.back()->context, request);
    grpc::testing::StreamingOutputCallResponse response;
    ASSERT_TRUE(calls.back()->reader->Read(&response)) << "call " << c;  // all three are open
  }
  for (auto& call : calls) {
    grpc::testing::StreamingOutputCallResponse response;
    while (call->reader->Read(&response)) {
    }
    EXPECT_TRUE(call->reader->Finish().ok());
  }
  EXPECT_THAT(proxy_->stats().Render(),
              HasSubstr("podlb_proxy_upstream_connections_total{service=\"default/greeter:50051\","
                        "endpoint=\"127.0.0.2:" +
                        std::to_string(backends_[0]->port()) + "\"} 2"));
}

// Issue #12: a slice change in a 5,000-endpoint Service rebuilds each worker's host list, and the
// pods that stayed keep their upstream connections. Besides the 3 serving pods, 4,997 endpoints
// are draining (a Service mid-rollout): in the table, never picked, so the only connections are
// to the 3. Then 100 of the draining ones are replaced.
TEST_F(ProxyTest, SliceChangeAtFiveThousandEndpointsKeepsConnectionsToPodsThatStay) {
  StartBackends(3);
  auto endpoints_with = [&](int first_other) {
    std::vector<Endpoint> endpoints;
    for (auto& b : backends_) endpoints.push_back(b->AsEndpoint());
    for (Endpoint& e : testing::DrainingFillerEndpoints(first_other, 4997)) {
      endpoints.push_back(std::move(e));
    }
    return endpoints;
  };
  registry_.Publish({kGreeter}, endpoints_with(0));
  StartProxy();
  auto stub = ProxyStub(port());
  auto connections_of = [&](const TestBackend& b) {
    return "podlb_proxy_upstream_connections_total{service=\"default/greeter:50051\",endpoint=\"" +
           b.AsEndpoint().HostPort() + "\"} 1\n";
  };
  std::set<std::string> answered;
  for (int i = 0; i < 30; ++i) answered.insert(CallUnary(*stub));
  EXPECT_EQ(answered.size(), 3u);
  for (auto& b : backends_) EXPECT_THAT(proxy_->stats().Render(), HasSubstr(connections_of(*b)));

  registry_.Publish({kGreeter}, endpoints_with(100));  // 100 of the others replaced
  answered.clear();
  for (int i = 0; i < 30; ++i) answered.insert(CallUnary(*stub));
  EXPECT_EQ(answered.size(), 3u);
  // Still exactly one connection each, ever: none was reopened by the change.
  for (auto& b : backends_) EXPECT_THAT(proxy_->stats().Render(), HasSubstr(connections_of(*b)));
}

TEST_F(ProxyTest, DrainLetsInFlightCallsFinish) {
  StartBackends(1);
  ProxyOptions options;
  options.shutdown_notice_delay = std::chrono::milliseconds(100);
  StartProxy(options);
  auto stub = ProxyStub(port());
  grpc::ClientContext context;
  grpc::testing::StreamingOutputCallRequest request;
  for (int i = 0; i < 10; ++i) {
    auto* p = request.add_response_parameters();
    p->set_size(100);
    p->set_interval_us(50'000);
  }
  auto reader = stub->StreamingOutputCall(&context, request);
  grpc::testing::StreamingOutputCallResponse response;
  ASSERT_TRUE(reader->Read(&response));
  std::thread drain([&] { EXPECT_EQ(proxy_->Drain(std::chrono::seconds(10)), 0); });
  int n = 1;
  while (reader->Read(&response)) ++n;
  EXPECT_EQ(n, 10);
  EXPECT_TRUE(reader->Finish().ok());
  drain.join();
  proxy_->Stop();
}

TEST_F(ProxyTest, FedByAFileSource) {
  backends_.push_back(std::make_unique<TestBackend>("pod-a", "127.0.0.2"));
  backends_.push_back(std::make_unique<TestBackend>("pod-b", "127.0.0.3"));
  testing::TempDir dir;
  std::string path = dir.path() + "/endpoints.yaml";
  auto write = [&](int n) {
    std::string yaml =
        "services:\n  - service: default/greeter:grpc\n    aliases: [default/greeter:50051]\n    "
        "endpoints:\n";
    for (int i = 0; i < n; ++i)
      yaml += "      - {address: " + backends_[i]->AsEndpoint().address +
              ", port: " + std::to_string(backends_[i]->port()) + ", pod: " + backends_[i]->name() +
              "}\n";
    testing::WriteFile(path, yaml);
  };
  write(1);
  FileSource source(path, registry_);
  ASSERT_TRUE(source.Start().ok());
  StartProxy();
  auto stub = ProxyStub(port());
  EXPECT_EQ(CallUnary(*stub), "pod-a");
  write(2);
  EXPECT_TRUE(testing::WaitFor([&] { return CallUnary(*stub) == "pod-b"; }, std::chrono::seconds(5),
                               "pod-b to take calls after the file changed"));
  source.Stop();
}

}  // namespace
}  // namespace podlb::proxy
