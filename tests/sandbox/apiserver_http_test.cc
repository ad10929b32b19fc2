// The API-server stand-in at the wire level, over plaintext HTTP/1.1 from a raw socket: hostile
// input (garbage, oversized headers, bad JSON) gets a clear Status and the server keeps serving;
// watch framing (initial events, bookmarks, timeoutSeconds, in-stream 410) and shutdown with
// open watches.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/api_server.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// A blocking client socket with a receive timeout, so a broken server fails the test instead of
// hanging it.
class RawClient {
 public:
  explicit RawClient(uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  }
  ~RawClient() { ::close(fd_); }
  bool connected() const { return connected_; }
  void CloseWrite() { ::shutdown(fd_, SHUT_WR); }

  bool Send(const std::string& data) {
    size_t sent = 0;
    while (sent < data.size()) {
      ssize_t n = ::send(fd_, data.data() + sent, data.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return false;
      sent += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads until `needle` appears (true) or EOF/timeout (false). Everything read is kept.
  bool ReadUntil(const std::string& needle) {
    while (received_.find(needle) == std::string::npos) {
      char buf[8192];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) return false;
      received_.append(buf, static_cast<size_t>(n));
    }
    return true;
  }
  // Reads to EOF; false on timeout.
  bool ReadToEof() {
    while (true) {
      char buf[8192];
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return true;
      if (n < 0) return false;
      received_.append(buf, static_cast<size_t>(n));
    }
  }
  const std::string& received() const { return received_; }
  json Body() const {
    size_t start = received_.find("\r\n\r\n");
    return json::parse(received_.substr(start == std::string::npos ? 0 : start + 4), nullptr,
                       false);
  }

 private:
  int fd_;
  bool connected_ = false;
  std::string received_;
};

std::string Get(const std::string& target, const std::string& extra_headers = "") {
  return "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer t\r\n" +
         extra_headers + "Connection: close\r\n\r\n";
}

json Slice(const std::string& name) {
  return {{"metadata", {{"name", name}, {"labels", {{"kubernetes.io/service-name", "greeter"}}}}},
          {"addressType", "IPv4"},
          {"endpoints", json::array()}};
}

class ApiServerHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions options;
    options.tls = false;
    options.tokens = {"t"};
    options.bookmark_interval = 50ms;
    server_ = std::make_unique<ApiServer>(options, store_);
    ASSERT_TRUE(server_->Start().ok());
  }

  // The server still answers a well-formed request from a new client.
  void ExpectStillServing() {
    RawClient client(server_->port());
    ASSERT_TRUE(client.Send(Get("/version")));
    ASSERT_TRUE(client.ReadToEof());
    EXPECT_THAT(client.received(), ::testing::StartsWith("HTTP/1.1 200 OK"));
    EXPECT_EQ(client.Body()["major"], "1");
  }

  std::shared_ptr<ResourceStore> store_ = std::make_shared<ResourceStore>();
  std::unique_ptr<ApiServer> server_;
};

TEST_F(ApiServerHttpTest, GarbageGetsBadRequest) {
  RawClient client(server_->port());
  ASSERT_TRUE(client.Send("\x16\x03\x01 this is not http\r\n\r\n"));
  ASSERT_TRUE(client.ReadToEof());
  EXPECT_THAT(client.received(), ::testing::StartsWith("HTTP/1.1 400 Bad Request"));
  EXPECT_EQ(client.Body()["reason"], "BadRequest");
  ExpectStillServing();
}

TEST_F(ApiServerHttpTest, OversizedHeadersGet431) {
  RawClient client(server_->port());
  std::string huge = "GET /version HTTP/1.1\r\nX-Big: " + std::string(2 << 20, 'a');
  ASSERT_TRUE(client.Send(huge));
  client.CloseWrite();
  ASSERT_TRUE(client.ReadToEof());
  EXPECT_THAT(client.received(), ::testing::StartsWith("HTTP/1.1 431"));
  ExpectStillServing();
}

TEST_F(ApiServerHttpTest, MalformedJsonBodyGetsBadRequestStatus) {
  RawClient client(server_->port());
  std::string body = "{\"metadata\": {\"name\": ";
  ASSERT_TRUE(
      client.Send("POST /api/v1/namespaces/default/services HTTP/1.1\r\nHost: x\r\n"
                  "Authorization: Bearer t\r\nContent-Type: application/json\r\n"
                  "Content-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body));
  ASSERT_TRUE(client.ReadUntil("}"));
  EXPECT_THAT(client.received(), ::testing::StartsWith("HTTP/1.1 400"));
  json status = client.Body();
  EXPECT_EQ(status["kind"], "Status");
  EXPECT_EQ(status["reason"], "BadRequest");
  EXPECT_THAT(status["message"].get<std::string>(), HasSubstr("not valid JSON"));
  // Keep-alive: the same connection serves the next request.
  ASSERT_TRUE(client.Send(Get("/api/v1/namespaces/default/services")));
  ASSERT_TRUE(client.ReadToEof());
  EXPECT_THAT(client.received(), HasSubstr("\"kind\":\"ServiceList\""));
  ExpectStillServing();
}

TEST_F(ApiServerHttpTest, UnknownPathsAndMissingObjectsAre404Status) {
  for (const std::string path :
       {"/nope", "/apis/example.com/v1/widgets", "/api/v1/namespaces/default/services/missing"}) {
    RawClient client(server_->port());
    ASSERT_TRUE(client.Send(Get(path)));
    ASSERT_TRUE(client.ReadToEof());
    EXPECT_THAT(client.received(), ::testing::StartsWith("HTTP/1.1 404")) << path;
    EXPECT_EQ(client.Body()["reason"], "NotFound") << path;
  }
}

TEST_F(ApiServerHttpTest, MissingTokenIsUnauthorized) {
  RawClient client(server_->port());
  ASSERT_TRUE(client.Send("GET /api/v1/services HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  ASSERT_TRUE(client.ReadToEof());
  EXPECT_THAT(client.received(), ::testing::StartsWith("HTTP/1.1 401"));
  EXPECT_EQ(client.Body()["message"], "Unauthorized");
}

TEST_F(ApiServerHttpTest, DiscoveryListsScaleSubresourceAndShortNames) {
  RawClient client(server_->port());
  ASSERT_TRUE(client.Send(Get("/apis/apps/v1")));
  ASSERT_TRUE(client.ReadToEof());
  json list = client.Body();
  ASSERT_EQ(list["kind"], "APIResourceList");
  std::map<std::string, json> by_name;
  for (const auto& r : list["resources"]) by_name[r["name"]] = r;
  ASSERT_TRUE(by_name.count("deployments/scale"));
  EXPECT_EQ(by_name["deployments/scale"]["kind"], "Scale");
  EXPECT_EQ(by_name["deployments"]["shortNames"][0], "deploy");
}

TEST_F(ApiServerHttpTest, WatchWithoutVersionStartsWithCurrentObjectsAndEndsAtTimeout) {
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("existing")).ok());
  RawClient client(server_->port());
  ASSERT_TRUE(
      client.Send(Get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?"
                      "watch=1&timeoutSeconds=1")));
  ASSERT_TRUE(client.ReadUntil("existing"));
  EXPECT_THAT(client.received(), HasSubstr("Transfer-Encoding: chunked"));
  EXPECT_THAT(client.received(), HasSubstr("{\"object\":"));
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("later")).ok());
  ASSERT_TRUE(client.ReadToEof());  // timeoutSeconds ends the stream
  const std::string& r = client.received();
  EXPECT_LT(r.find("\"ADDED\""), r.find("\"later\""));
  EXPECT_THAT(r, ::testing::EndsWith("0\r\n\r\n"));
  EXPECT_EQ(server_->WatchesOpened("endpointslices"), 1u);
}

TEST_F(ApiServerHttpTest, WatchSendsBookmarksWhenAsked) {
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("a")).ok());
  std::string version = std::to_string(store_->CurrentVersion());
  RawClient client(server_->port());
  ASSERT_TRUE(
      client.Send(Get("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?"
                      "watch=true&allowWatchBookmarks=true&resourceVersion=" +
                      version)));
  ASSERT_TRUE(client.ReadUntil("BOOKMARK"));
  ASSERT_TRUE(client.ReadUntil("\"type\":\"BOOKMARK\"}"));
  EXPECT_THAT(client.received(),
              HasSubstr("\"metadata\":{\"creationTimestamp\":null,\"resourceVersion\":\"" +
                        version + "\"}"));
  EXPECT_THAT(client.received(), HasSubstr("\"kind\":\"EndpointSlice\""));
}

TEST_F(ApiServerHttpTest, TooOldVersionIsGoneForWatchAndList) {
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("a")).ok());
  std::string old_version = std::to_string(store_->CurrentVersion());
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("b")).ok());
  store_->Compact();
  {
    RawClient client(server_->port());
    ASSERT_TRUE(client.Send(
        Get("/apis/discovery.k8s.io/v1/endpointslices?watch=1&resourceVersion=" + old_version)));
    ASSERT_TRUE(client.ReadToEof());
    EXPECT_THAT(client.received(), ::testing::StartsWith("HTTP/1.1 200 OK"));
    EXPECT_THAT(client.received(), HasSubstr("{\"object\":{\"apiVersion\":\"v1\",\"code\":410"));
    EXPECT_THAT(client.received(), HasSubstr("\"reason\":\"Expired\""));
    EXPECT_THAT(client.received(), HasSubstr("\"type\":\"ERROR\""));
    EXPECT_THAT(client.received(), HasSubstr("too old resource version: " + old_version));
  }
  {
    RawClient client(server_->port());
    ASSERT_TRUE(client.Send(
        Get("/apis/discovery.k8s.io/v1/endpointslices?resourceVersion=" + old_version)));
    ASSERT_TRUE(client.ReadToEof());
    EXPECT_THAT(client.received(), ::testing::StartsWith("HTTP/1.1 410"));
    EXPECT_EQ(client.Body()["code"], 410);
  }
}

TEST_F(ApiServerHttpTest, StopEndsOpenWatchesAndJoins) {
  RawClient first(server_->port());
  RawClient second(server_->port());
  ASSERT_TRUE(first.Send(Get("/api/v1/services?watch=1")));
  ASSERT_TRUE(second.Send(Get("/api/v1/namespaces/default/pods?watch=1&resourceVersion=1")));
  ASSERT_TRUE(first.ReadUntil("chunked"));
  ASSERT_TRUE(second.ReadUntil("chunked"));
  // A keep-alive connection idle between requests.
  RawClient idle(server_->port());
  ASSERT_TRUE(idle.Send("GET /version HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n\r\n"));
  ASSERT_TRUE(idle.ReadUntil("}"));
  auto start = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 5s);
  EXPECT_TRUE(first.ReadToEof());
  EXPECT_TRUE(second.ReadToEof());
  EXPECT_TRUE(idle.ReadToEof());
}

TEST_F(ApiServerHttpTest, ScaleSubresourceReadsAndWritesReplicas) {
  json deployment = {
      {"metadata", {{"name", "web"}}},
      {"spec", {{"replicas", 2}, {"selector", {{"matchLabels", {{"app", "web"}}}}}}}};
  ASSERT_TRUE(store_->Create("deployments", "default", deployment).ok());
  {
    RawClient client(server_->port());
    ASSERT_TRUE(client.Send(Get("/apis/apps/v1/namespaces/default/deployments/web/scale")));
    ASSERT_TRUE(client.ReadToEof());
    json scale = client.Body();
    EXPECT_EQ(scale["apiVersion"], "autoscaling/v1");
    EXPECT_EQ(scale["spec"]["replicas"], 2);
    EXPECT_EQ(scale["status"]["selector"], "app=web");
  }
  RawClient client(server_->port());
  std::string body = R"({"spec":{"replicas":7}})";
  ASSERT_TRUE(
      client.Send("PUT /apis/apps/v1/namespaces/default/deployments/web/scale HTTP/1.1\r\n"
                  "Host: x\r\nAuthorization: Bearer t\r\nConnection: close\r\n"
                  "Content-Length: " +
                  std::to_string(body.size()) + "\r\n\r\n" + body));
  ASSERT_TRUE(client.ReadToEof());
  EXPECT_EQ(client.Body()["spec"]["replicas"], 7);
  EXPECT_EQ((*store_->Get("deployments", "default", "web"))["spec"]["replicas"], 7);
}

}  // namespace
}  // namespace podlb::sandbox

namespace podlb::sandbox {
namespace {

std::string Write(const std::string& method, const std::string& target,
                  const std::string& content_type, const std::string& body) {
  return method + " " + target + " HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer t\r\n" +
         "Content-Type: " + content_type + "\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

json Pod(const std::string& name, const json& annotations) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"annotations", annotations}}},
          {"spec", {{"containers", {{{"name", "greeter"}, {"image", "podlb/greeter"}}}}}}};
}

// The podlb.io/fault-* annotations are validated on create, replace and every patch type: a
// bad value is a 422 with a Kubernetes Status naming the field, and nothing is stored.
TEST_F(ApiServerHttpTest, BadFaultAnnotationsAre422InvalidWithCauses) {
  const std::string pods = "/api/v1/namespaces/default/pods";
  auto send = [&](const std::string& request) {
    RawClient client(server_->port());
    EXPECT_TRUE(client.Send(request));
    EXPECT_TRUE(client.ReadToEof());
    EXPECT_THAT(client.received(), ::testing::StartsWith("HTTP/1.1 422")) << client.received();
    return client.Body();
  };

  json status = send(
      Write("POST", pods, "application/json", Pod("p", {{"podlb.io/fault-delay", "abc"}}).dump()));
  EXPECT_EQ(status["kind"], "Status");
  EXPECT_EQ(status["apiVersion"], "v1");
  EXPECT_EQ(status["status"], "Failure");
  EXPECT_EQ(status["reason"], "Invalid");
  EXPECT_EQ(status["code"], 422);
  EXPECT_EQ(status["message"],
            "Pod \"p\" is invalid: metadata.annotations[podlb.io/fault-delay]: Invalid value: "
            "\"abc\": must be a duration from 0 to 1h, a number with a unit (ns, us, ms, s, m, h) "
            "such as \"25ms\" or \"1.5s\"");
  EXPECT_EQ(status["details"]["name"], "p");
  EXPECT_EQ(status["details"]["kind"], "Pod");
  ASSERT_EQ(status["details"]["causes"].size(), 1u) << status.dump();
  EXPECT_EQ(status["details"]["causes"][0]["reason"], "FieldValueInvalid");
  EXPECT_EQ(status["details"]["causes"][0]["field"], "metadata.annotations[podlb.io/fault-delay]");
  EXPECT_THAT(status["details"]["causes"][0]["message"].get<std::string>(),
              ::testing::StartsWith("Invalid value: \"abc\": must be a duration"));
  EXPECT_EQ(store_->Get("pods", "default", "p").status().code(), absl::StatusCode::kNotFound);

  // A good pod, then every way of writing a bad value into it.
  ASSERT_TRUE(store_->Create("pods", "default", Pod("p", {{"podlb.io/fault-delay", "25ms"}})).ok());
  auto before = store_->Get("pods", "default", "p");
  ASSERT_TRUE(before.ok());

  status = send(Write("PATCH", pods + "/p", "application/merge-patch+json",
                      R"({"metadata":{"annotations":{"podlb.io/fault-error-rate":"1.5",
                          "podlb.io/fault-error-code":"NOPE"}}})"));
  ASSERT_EQ(status["details"]["causes"].size(), 2u) << status.dump();
  EXPECT_EQ(status["details"]["causes"][0]["field"],
            "metadata.annotations[podlb.io/fault-error-rate]");
  EXPECT_EQ(status["details"]["causes"][1]["field"],
            "metadata.annotations[podlb.io/fault-error-code]");
  EXPECT_THAT(status["message"].get<std::string>(),
              ::testing::StartsWith("Pod \"p\" is invalid: [metadata.annotations["));

  status = send(Write("PATCH", pods + "/p", "application/strategic-merge-patch+json",
                      R"({"metadata":{"annotations":{"podlb.io/fault-stuck":"maybe"}}})"));
  EXPECT_EQ(status["details"]["causes"][0]["message"],
            "Invalid value: \"maybe\": must be \"true\" or \"false\"");

  status = send(Write("PATCH", pods + "/p", "application/json-patch+json",
                      R"([{"op":"replace","path":"/metadata/annotations/podlb.io~1fault-delay",
                          "value":"-5ms"}])"));
  EXPECT_EQ(status["details"]["causes"][0]["field"], "metadata.annotations[podlb.io/fault-delay]");

  json replaced = *before;
  replaced["metadata"]["annotations"]["podlb.io/fault-error-rate"] = 0.5;  // not a string
  status = send(Write("PUT", pods + "/p", "application/json", replaced.dump()));
  EXPECT_EQ(status["details"]["causes"][0]["message"], "Invalid value: 0.5: must be a string");

  // Nothing of it was stored.
  auto after = store_->Get("pods", "default", "p");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *before);

  // Deployments carry the annotations into their pods, so their template is checked too.
  json deployment = {
      {"metadata", {{"name", "d"}}},
      {"spec",
       {{"replicas", 1},
        {"template", {{"metadata", {{"annotations", {{"podlb.io/fault-delay", "soon"}}}}}}}}}};
  status = send(Write("POST", "/apis/apps/v1/namespaces/default/deployments", "application/json",
                      deployment.dump()));
  EXPECT_EQ(status["details"]["causes"][0]["field"],
            "spec.template.metadata.annotations[podlb.io/fault-delay]");
  EXPECT_EQ(status["details"]["kind"], "Deployment");
  EXPECT_EQ(status["details"]["group"], "apps");
}

}  // namespace
}  // namespace podlb::sandbox
