// ApiClient against a scripted raw HTTP server: bodies, caps, streamed lines split across
// chunks, truncated streams, non-200 answers, cancellation, connection failure.
#include "discovery/kubernetes/api_client.h"

#include <chrono>

#include "discovery/raw_http_server.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/process.h"

namespace podlb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::RawHttpServer;

std::unique_ptr<ApiClient> Client(const std::string& url, ApiClientOptions options = {},
                                  std::string token = "sekret") {
  KubeConfig config;
  config.server = url;
  config.token = std::move(token);
  auto client = ApiClient::Create(config, options);
  EXPECT_TRUE(client.ok()) << client.status();
  return std::move(*client);
}

struct Watched {
  absl::StatusOr<HttpResponse> result;
  std::vector<std::string> lines;
  bool opened = false;
};

Watched RunWatch(ApiClient& client, const std::atomic<bool>* cancel = nullptr) {
  Watched w;
  static const std::atomic<bool> kNever{false};
  w.result = client.Watch(
      "/watch", [&] { w.opened = true; },
      [&](std::string_view line) {
        w.lines.emplace_back(line);
        return absl::OkStatus();
      },
      cancel ? cancel : &kNever, std::chrono::seconds(30));
  return w;
}

TEST(ApiClientTest, GetReturnsStatusAndBodyAndSendsTheToken) {
  RawHttpServer server([](const std::string&) { return RawHttpServer::Json(200, "{\"a\":1}"); });
  auto client = Client(server.url());
  std::atomic<bool> cancel{false};
  auto response = client->Get("/api/v1/namespaces/default/services", &cancel);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "{\"a\":1}");
  auto requests = server.Requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_THAT(requests[0], HasSubstr("GET /api/v1/namespaces/default/services HTTP/1.1"));
  EXPECT_THAT(requests[0], HasSubstr("Authorization: Bearer sekret"));
}

TEST(ApiClientTest, GetRefusesABodyOverTheCap) {
  RawHttpServer server(
      [](const std::string&) { return RawHttpServer::Json(200, std::string(100000, 'x')); });
  ApiClientOptions options;
  options.max_body_bytes = 1000;
  auto client = Client(server.url(), options);
  std::atomic<bool> cancel{false};
  auto response = client->Get("/big", &cancel);
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(response.status())) << response.status();
}

TEST(ApiClientTest, WatchJoinsLinesSplitAcrossChunks) {
  RawHttpServer server([](const std::string&) {
    return RawHttpServer::Chunked({"{\"n\":1}\n{\"n\"", ":2}", "\n", "{\"n\":3}\n\n{\"n\":4}\n"},
                                  /*final_chunk=*/true, /*hold=*/false);
  });
  auto client = Client(server.url());
  Watched w = RunWatch(*client);
  ASSERT_TRUE(w.result.ok()) << w.result.status();
  EXPECT_EQ(w.result->status, 200);
  EXPECT_TRUE(w.opened);
  EXPECT_THAT(w.lines, ElementsAre("{\"n\":1}", "{\"n\":2}", "{\"n\":3}", "{\"n\":4}"));
}

TEST(ApiClientTest, WatchCutMidLineIsTruncatedAndNotParsed) {
  RawHttpServer server([](const std::string&) {
    return RawHttpServer::Stream("{\"n\":1}\n{\"type\":\"ADDED\",\"obj", /*hold=*/false);
  });
  auto client = Client(server.url());
  Watched w = RunWatch(*client);
  ASSERT_FALSE(w.result.ok());
  EXPECT_TRUE(absl::IsDataLoss(w.result.status())) << w.result.status();
  EXPECT_THAT(std::string(w.result.status().message()), HasSubstr("middle of an event"));
  EXPECT_THAT(w.lines, ElementsAre("{\"n\":1}"));
}

TEST(ApiClientTest, WatchChunkedStreamCutMidLineIsTruncated) {
  RawHttpServer server([](const std::string&) {
    return RawHttpServer::Chunked({"{\"n\":1}\n{\"n\""}, /*final_chunk=*/false, /*hold=*/false);
  });
  auto client = Client(server.url());
  Watched w = RunWatch(*client);
  ASSERT_FALSE(w.result.ok());
  EXPECT_TRUE(absl::IsDataLoss(w.result.status())) << w.result.status();
}

TEST(ApiClientTest, WatchLineOverTheCapEndsTheWatch) {
  RawHttpServer server([](const std::string&) {
    return RawHttpServer::Stream("{\"n\":1}\n" + std::string(5000, 'x') + "\n", false);
  });
  ApiClientOptions options;
  options.max_line_bytes = 1000;
  auto client = Client(server.url(), options);
  Watched w = RunWatch(*client);
  ASSERT_FALSE(w.result.ok());
  EXPECT_TRUE(absl::IsResourceExhausted(w.result.status())) << w.result.status();
}

TEST(ApiClientTest, WatchNon200ReturnsTheBodyWithoutLines) {
  RawHttpServer server([](const std::string&) {
    return RawHttpServer::Json(
        410, R"({"kind":"Status","status":"Failure","message":"too old","reason":"Expired","code":410})");
  });
  auto client = Client(server.url());
  Watched w = RunWatch(*client);
  ASSERT_TRUE(w.result.ok()) << w.result.status();
  EXPECT_EQ(w.result->status, 410);
  EXPECT_THAT(w.result->body, HasSubstr("too old"));
  EXPECT_TRUE(w.lines.empty());
  EXPECT_FALSE(w.opened);
}

TEST(ApiClientTest, CancelEndsAQuietWatchPromptly) {
  RawHttpServer server([](const std::string&) { return RawHttpServer::Stream("", /*hold=*/true); });
  auto client = Client(server.url());
  std::atomic<bool> cancel{false};
  absl::Mutex mu;
  bool opened = false;
  std::chrono::steady_clock::time_point cancelled_at;
  std::thread canceller([&] {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&opened));
    cancelled_at = std::chrono::steady_clock::now();
    cancel = true;
  });
  auto result = client->Watch(
      "/watch",
      [&] {
        absl::MutexLock lock(&mu);
        opened = true;
      },
      [](std::string_view) { return absl::OkStatus(); }, &cancel, std::chrono::seconds(60));
  const auto took = std::chrono::steady_clock::now() - cancelled_at;
  canceller.join();
  EXPECT_TRUE(absl::IsCancelled(result.status())) << result.status();
  EXPECT_LT(took, std::chrono::milliseconds(500));
}

TEST(ApiClientTest, ConnectionRefusedIsUnavailable) {
  const int port = testing::PickFreePort();
  auto client = Client("http://127.0.0.1:" + std::to_string(port));
  std::atomic<bool> cancel{false};
  auto response = client->Get("/x", &cancel);
  ASSERT_FALSE(response.ok());
  EXPECT_TRUE(absl::IsUnavailable(response.status())) << response.status();
  EXPECT_THAT(std::string(response.status().message()), HasSubstr("cannot reach the API server"));
}

}  // namespace
}  // namespace podlb
