// End to end: the `podlb proxy` binary fed by --file, with its admin port, and SIGTERM drain
// (GOAWAY notice, final GOAWAY, in-flight calls finish, exit 0).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <regex>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proxy/test_backend.h"
#include "support/process.h"

namespace podlb {
namespace {

using ::podlb::testing::ProxyStub;
using ::podlb::testing::TestBackend;
using ::testing::HasSubstr;

// Minimal HTTP/1.0 GET against the admin port.
std::string HttpGet(int port, const std::string& path) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return "";
  }
  std::string request = "GET " + path + " HTTP/1.0\r\nHost: x\r\n\r\n";
  [[maybe_unused]] ssize_t w = write(fd, request.data(), request.size());
  std::string response;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof(buf))) > 0) response.append(buf, n);
  close(fd);
  return response;
}

int PortFromLine(const std::vector<std::string>& lines, const std::string& pattern) {
  std::regex re(pattern);
  std::smatch m;
  for (const auto& line : lines)
    if (std::regex_search(line, m, re)) return std::stoi(m[1].str());
  return -1;
}

TEST(ProxyBinaryTest, ServesBalancesReportsAndDrainsOnSigterm) {
  TestBackend a("pod-a", "127.0.0.2"), b("pod-b", "127.0.0.3");
  testing::TempDir dir;
  std::string file = dir.path() + "/endpoints.yaml";
  testing::WriteFile(file,
                     "services:\n  - service: default/greeter:50051\n    endpoints:\n"
                     "      - {address: 127.0.0.2, port: " +
                         std::to_string(a.port()) +
                         ", pod: pod-a}\n"
                         "      - {address: 127.0.0.3, port: " +
                         std::to_string(b.port()) + ", pod: pod-b}\n");
  testing::ChildProcess proxy({testing::PodlbBinary(), "proxy", "--file", file, "--listen",
                               "127.0.0.1:0=default/greeter:50051", "--listen", "127.0.0.1:0",
                               "--admin", "127.0.0.1:0", "--workers", "2",
                               "--shutdown-notice-delay", "200", "--drain-timeout", "10",
                               // Exact 50/50 needs round robin: the default, peak EWMA, follows
                               // latency, which a loaded machine makes uneven.
                               "--lb", "round_robin"});
  ASSERT_TRUE(proxy.WaitForLineContaining("admin on port", std::chrono::seconds(10)));
  int port =
      PortFromLine(proxy.Lines(), R"(listening on 127\.0\.0\.1:(\d+) routing default/greeter)");
  int authority_port =
      PortFromLine(proxy.Lines(), R"(listening on 127\.0\.0\.1:(\d+) routing by :authority)");
  int admin = PortFromLine(proxy.Lines(), R"(admin on port (\d+))");
  ASSERT_GT(port, 0);
  ASSERT_GT(authority_port, 0);
  ASSERT_GT(admin, 0);

  auto stub = ProxyStub(port);
  std::map<std::string, int> counts;
  for (int i = 0; i < 100; ++i) {
    grpc::ClientContext context;
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    ASSERT_TRUE(stub->UnaryCall(&context, request, &response).ok());
    ++counts[response.hostname()];
  }
  EXPECT_EQ(counts["pod-a"], 50);
  EXPECT_EQ(counts["pod-b"], 50);
  {
    auto by_authority = ProxyStub(authority_port, "greeter.default.svc.cluster.local:50051");
    grpc::ClientContext context;
    grpc::testing::SimpleRequest request;
    grpc::testing::SimpleResponse response;
    EXPECT_TRUE(by_authority->UnaryCall(&context, request, &response).ok());
  }

  EXPECT_THAT(HttpGet(admin, "/healthz"), HasSubstr("200"));
  EXPECT_THAT(HttpGet(admin, "/readyz"), HasSubstr("ready"));
  std::string metrics = HttpGet(admin, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("podlb_proxy_upstream_requests_total{service=\"default/"
                                 "greeter:50051\",endpoint=\"127.0.0.2:"));
  EXPECT_THAT(metrics, HasSubstr("podlb_proxy_downstream_streams_total 101"));
  EXPECT_THAT(HttpGet(admin, "/debug/endpoints"), HasSubstr("pod=pod-b"));

  // A slow server-streaming call is in flight when SIGTERM arrives: it must finish.
  grpc::ClientContext context;
  grpc::testing::StreamingOutputCallRequest request;
  for (int i = 0; i < 10; ++i) {
    auto* p = request.add_response_parameters();
    p->set_size(100);
    p->set_interval_us(60'000);
  }
  auto reader = stub->StreamingOutputCall(&context, request);
  grpc::testing::StreamingOutputCallResponse response;
  ASSERT_TRUE(reader->Read(&response));
  ASSERT_EQ(kill(proxy.pid(), SIGTERM), 0);
  int n = 1;
  while (reader->Read(&response)) ++n;
  EXPECT_EQ(n, 10);
  grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(proxy.WaitExit(std::chrono::seconds(10)), 0);
  EXPECT_TRUE(proxy.WaitForLineContaining("drained", std::chrono::seconds(1)));
}

}  // namespace
}  // namespace podlb
