// podlb.io/retry-on-unavailable in the proxy: a call answered UNAVAILABLE before any response
// byte reached the client goes to another pod, within the Service's retry budget; never after
// bytes were forwarded, never with a body over the retry buffer. Real grpc++ backends.
#include <grpcpp/grpcpp.h>

#include <unistd.h>

#include <fstream>
#include <regex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/proxy_server.h"
#include "proxy/test_backend.h"
#include "support/process.h"

namespace podlb::proxy {
namespace {

using ::podlb::testing::ProxyStub;
using ::podlb::testing::TestBackend;

const ServiceKey kGreeter{"default", "greeter", "50051"};

bool PromtoolMissing() { return access("/usr/bin/promtool", X_OK) != 0; }

// The value of one metric line, or -1.
double Metric(const std::string& text, const std::string& line_prefix) {
  size_t at = text.find(line_prefix);
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + line_prefix.size()));
}

class UnavailableRetryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    good_ = std::make_unique<TestBackend>("pod-good", "127.0.0.2");
    bad_ = std::make_unique<TestBackend>("pod-bad", "127.0.0.3");
    bad_->FailEveryCall(grpc::StatusCode::UNAVAILABLE);
    registry_.Publish({kGreeter}, {good_->AsEndpoint(), bad_->AsEndpoint()});
  }
  void Start(uint32_t retries) {
    ProxyOptions options;
    options.listeners.push_back({.host = "127.0.0.1", .port = 0, .service = kGreeter});
    // Round robin without ejection: the failing pod keeps getting every other call, so every
    // one of those needs the retry (and the budget).
    options.balancing.lb_policy = balancing::PolicyKind::kRoundRobin;
    options.balancing.outlier.enabled = false;
    options.balancing.retries_on_unavailable = retries;
    proxy_ = std::make_unique<ProxyServer>(options, registry_);
    ASSERT_TRUE(proxy_->Start().ok());
    stub_ = ProxyStub(proxy_->ports()[0]);
  }
  grpc::Status Unary(size_t request_bytes = 0, std::string* hostname = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::testing::SimpleRequest request;
    request.mutable_payload()->set_body(std::string(request_bytes, 'r'));
    grpc::testing::SimpleResponse response;
    grpc::Status status = stub_->UnaryCall(&context, request, &response);
    if (hostname) *hostname = response.hostname();
    return status;
  }

  Registry registry_;
  std::unique_ptr<TestBackend> good_, bad_;
  std::unique_ptr<ProxyServer> proxy_;
  std::unique_ptr<grpc::testing::TestService::Stub> stub_;
};

TEST_F(UnavailableRetryTest, WithoutTheAnnotationUnavailableReachesTheClient) {
  Start(/*retries=*/0);
  int failed = 0;
  for (int i = 0; i < 20; ++i) failed += Unary().error_code() == grpc::StatusCode::UNAVAILABLE;
  EXPECT_EQ(failed, 10);  // round robin: every other call went to the failing pod
}

TEST_F(UnavailableRetryTest, RetriedOnAnotherPodAndCounted) {
  Start(/*retries=*/2);
  for (int i = 0; i < 40; ++i) {
    std::string host;
    grpc::Status status = Unary(100, &host);
    ASSERT_TRUE(status.ok()) << i << ": " << status.error_message();
    EXPECT_EQ(host, "pod-good");
  }
  EXPECT_EQ(good_->calls(), 40);  // each call answered once: no call ran twice on the good pod
  EXPECT_GE(bad_->calls(), 20);  // at least every other call went there first
  const std::string metrics = proxy_->RenderMetrics();
  EXPECT_EQ(Metric(metrics, "podlb_proxy_retries_total{service=\"default/greeter:50051\","
                            "reason=\"unavailable\"} "),
            bad_->calls());
  EXPECT_EQ(Metric(metrics, "podlb_proxy_responses_total{service=\"default/greeter:50051\","
                            "grpc_status=\"0\"} "),
            40);
}

TEST_F(UnavailableRetryTest, NeverRetriedAfterResponseBytesWereForwarded) {
  Start(/*retries=*/2);
  int saw_partial_failure = 0;
  for (int i = 0; i < 10; ++i) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::testing::StreamingOutputCallRequest request;
    request.add_response_parameters()->set_size(10);
    auto reader = stub_->StreamingOutputCall(&context, request);
    grpc::testing::StreamingOutputCallResponse response;
    int messages = 0;
    while (reader->Read(&response)) ++messages;
    grpc::Status status = reader->Finish();
    // One message, then the failing pod's UNAVAILABLE: the client saw bytes, so the proxy
    // must pass the status on rather than replay the call elsewhere (which would duplicate it).
    EXPECT_EQ(messages, 1);
    if (!status.ok()) {
      EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
      ++saw_partial_failure;
    }
  }
  EXPECT_EQ(saw_partial_failure, 5);
  EXPECT_EQ(good_->output_streams(), 5);
}

TEST_F(UnavailableRetryTest, BodyOverTheRetryBufferIsNotRetried) {
  Start(/*retries=*/2);
  int failed = 0;
  // 100 KiB requests exceed the 64 KiB the proxy keeps for replays.
  for (int i = 0; i < 10; ++i) failed += !Unary(100 * 1024).ok();
  EXPECT_EQ(failed, 5);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(Unary(1024).ok());
}

TEST_F(UnavailableRetryTest, BudgetHoldsWhenAPodFailsEverything) {
  Start(/*retries=*/2);
  const int calls = 2000;
  int ok = 0;
  for (int i = 0; i < calls; ++i) ok += Unary().ok();
  const std::string metrics = proxy_->RenderMetrics();
  const double retries = Metric(metrics, "podlb_proxy_retries_total{service=\"default/"
                                         "greeter:50051\",reason=\"unavailable\"} ");
  const double exhausted = Metric(metrics, "podlb_proxy_retry_budget_exhausted_total{service="
                                           "\"default/greeter:50051\"} ");
  // At most 20 % of the calls plus 10/s over the 10 s window (the run takes a few seconds).
  EXPECT_LE(retries, 0.2 * calls + 100 + 10);
  EXPECT_GT(exhausted, 0);
  // Every attempt is accounted for: first attempts plus retries. Retries never went back to the
  // failing pod, and every good answer came from the good pod, once.
  EXPECT_EQ(bad_->calls() + good_->calls(), calls + static_cast<int>(retries));
  EXPECT_EQ(ok, good_->calls());
  EXPECT_EQ(calls - ok, bad_->calls() - static_cast<int>(retries));
}

// Every family of /metrics (the workers' counters, the call histogram by status class, responses
// by grpc_status, retries, the balancer's per-endpoint view) is valid Prometheus text, as
// Prometheus's own checker reads it.
TEST_F(UnavailableRetryTest, MetricsPassPromtool) {
  if (PromtoolMissing()) GTEST_SKIP() << "promtool not installed (make bootstrap)";
  Start(/*retries=*/2);
  for (int i = 0; i < 20; ++i) Unary();
  testing::TempDir dir;
  const std::string path = dir.path() + "/metrics.txt";
  {
    std::ofstream out(path);
    out << proxy_->RenderMetrics();
  }
  std::string output;
  EXPECT_EQ(testing::RunCommand({"/bin/sh", "-c", "promtool check metrics < " + path}, &output), 0)
      << output;
  EXPECT_EQ(output.find("problem"), std::string::npos) << output;  // lint findings
}

}  // namespace
}  // namespace podlb::proxy
