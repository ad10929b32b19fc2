// The API-server stand-in at the wire level, over plaintext HTTP/1.1 from a raw socket: hostile
// input (garbage, oversized headers, bad JSON) gets a clear Status and the server keeps serving;
// watch framing (initial events, bookmarks, timeoutSeconds, in-stream 410) and shutdown with
// open watches; the legacy /watch/ paths; chunked lists (limit, continue, 410 Expired); OpenAPI v2.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "absl/strings/escaping.h"
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

json Endpoints(const std::string& name, const std::string& address) {
  return {
      {"metadata", {{"name", name}}},
      {"subsets",
       {{{"addresses", {{{"ip", address}}}}, {"ports", {{{"name", "grpc"}, {"port", 50051}}}}}}}};
}

// The events of a finished watch response (chunked), one JSON object per line.
std::vector<json> Events(const std::string& received) {
  std::vector<json> events;
  size_t at = 0;
  while ((at = received.find("{\"object\":", at)) != std::string::npos) {
    size_t end = received.find('\n', at);
    events.push_back(json::parse(received.substr(at, end - at), nullptr, false));
    at = end;
  }
  return events;
}

// kuberesolver (up to v5) gets one Endpoints object, then watches it through the legacy path
// with no resourceVersion and requires Content-Type application/json.
TEST_F(ApiServerHttpTest, LegacyWatchOfOneEndpointsObjectAsKuberesolverDoesIt) {
  ASSERT_TRUE(store_->Create("endpoints", "default", Endpoints("greeter", "10.0.0.1")).ok());
  ASSERT_TRUE(store_->Create("endpoints", "default", Endpoints("other", "10.0.0.9")).ok());
  {
    RawClient client(server_->port());
    ASSERT_TRUE(client.Send(Get("/api/v1/namespaces/default/endpoints/greeter")));
    ASSERT_TRUE(client.ReadToEof());
    EXPECT_EQ(client.Body()["subsets"][0]["addresses"][0]["ip"], "10.0.0.1");
  }
  RawClient client(server_->port());
  ASSERT_TRUE(
      client.Send(Get("/api/v1/watch/namespaces/default/endpoints/greeter?timeoutSeconds=1")));
  ASSERT_TRUE(client.ReadUntil("10.0.0.1"));
  EXPECT_THAT(client.received(), ::testing::StartsWith("HTTP/1.1 200 OK"));
  EXPECT_THAT(client.received(), HasSubstr("Content-Type: application/json\r\n"));
  json changed = *store_->Get("endpoints", "default", "greeter");
  changed["subsets"][0]["addresses"][0]["ip"] = "10.0.0.2";
  ASSERT_TRUE(store_->Update("endpoints", "default", changed).ok());
  ASSERT_TRUE(store_->Create("endpoints", "default", Endpoints("third", "10.0.0.3")).ok());
  json other = *store_->Get("endpoints", "default", "other");
  other["subsets"][0]["addresses"][0]["ip"] = "10.0.0.8";
  ASSERT_TRUE(store_->Update("endpoints", "default", other).ok());
  ASSERT_TRUE(client.ReadToEof());
  std::vector<json> events = Events(client.received());
  ASSERT_EQ(events.size(), 2u) << client.received();
  EXPECT_EQ(events[0]["type"], "ADDED");
  EXPECT_EQ(events[0]["object"]["kind"], "Endpoints");
  EXPECT_EQ(events[0]["object"]["metadata"]["name"], "greeter");
  EXPECT_EQ(events[1]["type"], "MODIFIED");
  EXPECT_EQ(events[1]["object"]["subsets"][0]["addresses"][0]["ip"], "10.0.0.2");
  EXPECT_EQ(server_->WatchesOpened("endpoints"), 1u);
}

TEST_F(ApiServerHttpTest, LegacyWatchPathsForCollectionsGroupsAndTheCluster) {
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("a")).ok());
  ASSERT_TRUE(store_->Create("endpointslices", "other", Slice("b")).ok());
  const std::string version = std::to_string(store_->CurrentVersion());
  struct Case {
    std::string path;
    std::vector<std::string> names;  // of the events, in order
  };
  for (const Case& c : std::vector<Case>{
           {"/apis/discovery.k8s.io/v1/watch/namespaces/default/endpointslices", {"a", "c"}},
           // Key order: default/a, default/c, other/b.
           {"/apis/discovery.k8s.io/v1/watch/endpointslices", {"a", "c", "b"}},
           {"/apis/discovery.k8s.io/v1/watch/namespaces/other/endpointslices/b", {"b"}},
           {"/apis/discovery.k8s.io/v1/watch/namespaces/default/endpointslices?"
            "fieldSelector=metadata.name%3Dc",
            {"c"}},
       }) {
    SCOPED_TRACE(c.path);
    RawClient client(server_->port());
    std::string sep = c.path.find('?') == std::string::npos ? "?" : "&";
    ASSERT_TRUE(client.Send(Get(c.path + sep + "timeoutSeconds=1")));
    ASSERT_TRUE(client.ReadUntil("chunked"));
    if (c.path == "/apis/discovery.k8s.io/v1/watch/namespaces/default/endpointslices") {
      ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("c")).ok());
    }
    ASSERT_TRUE(client.ReadToEof());
    std::vector<std::string> names;
    for (const json& event : Events(client.received())) {
      EXPECT_EQ(event["type"], "ADDED");
      names.push_back(event["object"]["metadata"]["name"]);
    }
    EXPECT_EQ(names, c.names);
  }
  // From a version: only what changed since, as with ?watch=true.
  RawClient client(server_->port());
  ASSERT_TRUE(client.Send(
      Get("/api/v1/watch/namespaces/default/endpoints?timeoutSeconds=1&resourceVersion=" +
          std::to_string(store_->CurrentVersion()))));
  ASSERT_TRUE(client.ReadUntil("chunked"));
  ASSERT_TRUE(store_->Create("endpoints", "default", Endpoints("late", "10.0.0.5")).ok());
  ASSERT_TRUE(client.ReadToEof());
  std::vector<json> events = Events(client.received());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]["object"]["metadata"]["name"], "late");
  // The cluster-wide core path.
  RawClient services(server_->port());
  ASSERT_TRUE(
      services.Send(Get("/api/v1/watch/services?timeoutSeconds=1&resourceVersion=" + version)));
  ASSERT_TRUE(services.ReadToEof());
  EXPECT_THAT(services.received(), ::testing::StartsWith("HTTP/1.1 200 OK"));
}

TEST_F(ApiServerHttpTest, LegacyWatchRejectsWhatTheRealServerRejects) {
  struct Case {
    std::string request;
    std::string status;
    std::string needle;
  };
  for (const Case& c : std::vector<Case>{
           {Get("/api/v1/watch/namespaces/default/endpoints/a?fieldSelector=metadata.name%3Db"),
            "HTTP/1.1 400", "fieldSelector metadata.name doesn't match requested name"},
           {Get("/api/v1/watch"), "HTTP/1.1 404", "NotFound"},
           {Get("/api/v1/watch/widgets"), "HTTP/1.1 404", "NotFound"},
           {Get("/apis/apps/v1/watch/namespaces/default/deployments/web/scale"), "HTTP/1.1 404",
            "NotFound"},
           {"DELETE /api/v1/watch/namespaces/default/endpoints/a HTTP/1.1\r\nHost: x\r\n"
            "Authorization: Bearer t\r\nConnection: close\r\n\r\n",
            "HTTP/1.1 405", "MethodNotAllowed"},
           {"GET /api/v1/watch/namespaces/default/endpoints/a HTTP/1.1\r\nHost: x\r\n"
            "Connection: close\r\n\r\n",
            "HTTP/1.1 401", "Unauthorized"},
       }) {
    SCOPED_TRACE(c.request);
    RawClient client(server_->port());
    ASSERT_TRUE(client.Send(c.request));
    ASSERT_TRUE(client.ReadToEof());
    EXPECT_THAT(client.received(), ::testing::StartsWith(c.status));
    EXPECT_THAT(client.received(), HasSubstr(c.needle));
  }
}

json DecodeToken(const std::string& token) {
  std::string data;
  EXPECT_EQ(token.find('='), std::string::npos) << "unpadded, as Go's RawURLEncoding";
  EXPECT_TRUE(absl::WebSafeBase64Unescape(token, &data)) << token;
  return json::parse(data, nullptr, false);
}

json GetJson(uint16_t port, const std::string& target, std::string* head = nullptr) {
  RawClient client(port);
  EXPECT_TRUE(client.Send(Get(target)));
  EXPECT_TRUE(client.ReadToEof());
  if (head != nullptr) *head = client.received().substr(0, client.received().find("\r\n"));
  return client.Body();
}

std::vector<std::string> ItemNames(const json& list) {
  std::vector<std::string> names;
  for (const auto& item : list["items"]) names.push_back(item["metadata"]["name"]);
  return names;
}

TEST_F(ApiServerHttpTest, ChunkedListServesOneSnapshotWithTheRealTokenShape) {
  for (const char* name : {"d", "b", "e", "a", "c"}) {
    ASSERT_TRUE(store_->Create("endpointslices", "default", Slice(name)).ok());
  }
  ASSERT_TRUE(store_->Create("endpointslices", "other", Slice("x")).ok());
  const std::string collection = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
  std::string status;
  json first = GetJson(server_->port(), collection + "?limit=2", &status);
  EXPECT_EQ(status, "HTTP/1.1 200 OK");
  EXPECT_EQ(ItemNames(first), (std::vector<std::string>{"a", "b"}));
  const std::string rv = first["metadata"]["resourceVersion"];
  EXPECT_EQ(first["metadata"]["remainingItemCount"], 3);
  json token = DecodeToken(first["metadata"]["continue"]);
  EXPECT_EQ(
      token,
      (json{{"v", "meta.k8s.io/v1"}, {"rv", std::stoll(rv)}, {"start", std::string("b") + '\0'}}));

  // Changes between pages do not show: the next pages read the first page's snapshot.
  ASSERT_TRUE(store_->Delete("endpointslices", "default", "c").ok());
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("bb")).ok());
  json second =
      GetJson(server_->port(),
              collection + "?limit=2&continue=" + first["metadata"]["continue"].get<std::string>());
  EXPECT_EQ(ItemNames(second), (std::vector<std::string>{"c", "d"}));
  EXPECT_EQ(second["metadata"]["resourceVersion"], rv);
  EXPECT_EQ(second["metadata"]["remainingItemCount"], 1);
  json third = GetJson(server_->port(), collection + "?limit=2&continue=" +
                                            second["metadata"]["continue"].get<std::string>());
  EXPECT_EQ(ItemNames(third), (std::vector<std::string>{"e"}));
  EXPECT_FALSE(third["metadata"].contains("continue"));
  EXPECT_FALSE(third["metadata"].contains("remainingItemCount"));
  EXPECT_EQ(server_->ListsServed("endpointslices"), 3u);

  // All namespaces: keys are namespace/name; with a selector, no remainingItemCount.
  json all = GetJson(server_->port(), "/apis/discovery.k8s.io/v1/endpointslices?limit=5");
  EXPECT_EQ(ItemNames(all), (std::vector<std::string>{"a", "b", "bb", "d", "e"}));
  EXPECT_EQ(DecodeToken(all["metadata"]["continue"])["start"], std::string("default/e") + '\0');
  json selected =
      GetJson(server_->port(),
              collection + "?limit=1&labelSelector=kubernetes.io%2Fservice-name%3Dgreeter");
  EXPECT_TRUE(selected["metadata"].contains("continue"));
  EXPECT_FALSE(selected["metadata"].contains("remainingItemCount"));
  // limit=0 means no limit.
  EXPECT_EQ(ItemNames(GetJson(server_->port(), collection + "?limit=0")).size(), 5u);
}

TEST_F(ApiServerHttpTest, ExpiredContinueTokenIs410WithATokenForTheRest) {
  for (const char* name : {"a", "b", "c"}) {
    ASSERT_TRUE(store_->Create("endpointslices", "default", Slice(name)).ok());
  }
  const std::string collection = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices";
  json first = GetJson(server_->port(), collection + "?limit=1");
  ASSERT_TRUE(first["metadata"].contains("continue"));
  ASSERT_TRUE(store_->Create("endpointslices", "default", Slice("d")).ok());
  store_->Compact();  // the first page's version is now older than the history

  std::string status;
  json expired =
      GetJson(server_->port(),
              collection + "?limit=1&continue=" + first["metadata"]["continue"].get<std::string>(),
              &status);
  EXPECT_EQ(status, "HTTP/1.1 410 Gone");
  EXPECT_EQ(expired["kind"], "Status");
  EXPECT_EQ(expired["reason"], "Expired");
  EXPECT_EQ(expired["code"], 410);
  EXPECT_EQ(expired["message"],
            "The provided continue parameter is too old to display a consistent list result. You "
            "can start a new list without the continue parameter, or use the continue token in "
            "this response to retrieve the remainder of the results. Continuing with the provided "
            "token results in an inconsistent list - objects that were created, modified, or "
            "deleted between the time the first chunk was returned and now may show up in the "
            "list.");
  // The token in the Status finishes the list at the latest version (rv -1), inconsistently.
  const std::string rest_token = expired["metadata"]["continue"];
  EXPECT_EQ(DecodeToken(rest_token)["rv"], -1);
  json rest = GetJson(server_->port(), collection + "?continue=" + rest_token);
  EXPECT_EQ(ItemNames(rest), (std::vector<std::string>{"b", "c", "d"}));
  EXPECT_EQ(rest["metadata"]["resourceVersion"], std::to_string(store_->CurrentVersion()));
}

TEST_F(ApiServerHttpTest, BadLimitAndContinueAreBadRequests) {
  const std::string collection = "/api/v1/namespaces/default/services";
  const std::string wrong_version = absl::WebSafeBase64Escape(R"({"v":"v9","rv":5,"start":"a"})");
  const std::string climbing =
      absl::WebSafeBase64Escape(R"({"v":"meta.k8s.io/v1","rv":5,"start":"../kube-system/x"})");
  const std::string no_rv = absl::WebSafeBase64Escape(R"({"v":"meta.k8s.io/v1","start":"a"})");
  struct Case {
    std::string query;
    int code;
    std::string needle;
  };
  for (const Case& c : std::vector<Case>{
           {"limit=abc", 400, "strconv.ParseInt: parsing \"abc\": invalid syntax"},
           {"limit=-1", 400, "limit must be a non-negative integer"},
           {"limit=1.5", 400, "invalid limit"},
           {"continue=garbage!!", 400, "invalid continue token: continue key is not valid"},
           {"continue=" + wrong_version, 400, "server does not recognize this encoded version"},
           {"continue=" + climbing, 400, "continue key is not valid: ../kube-system/x"},
           {"continue=" + no_rv, 400, "incorrect encoded start resourceVersion"},
           {"continue=" + no_rv + "&resourceVersion=7", 400,
            "specifying resource version is not allowed when using continue"},
           {"resourceVersion=1&resourceVersionMatch=Sometimes", 422,
            "resourceVersionMatch: Unsupported value: \"Sometimes\""},
       }) {
    SCOPED_TRACE(c.query);
    std::string status;
    json body = GetJson(server_->port(), collection + "?" + c.query, &status);
    EXPECT_THAT(status, ::testing::StartsWith("HTTP/1.1 " + std::to_string(c.code)));
    EXPECT_EQ(body["kind"], "Status");
    EXPECT_EQ(body["reason"], c.code == 400 ? "BadRequest" : "Invalid");
    EXPECT_EQ(body["code"], c.code);
    EXPECT_THAT(body["message"].get<std::string>(), HasSubstr(c.needle));
  }
  ExpectStillServing();
}

TEST_F(ApiServerHttpTest, ExactResourceVersionListsAnOlderSnapshot) {
  ASSERT_TRUE(store_->Create("services", "default", {{"metadata", {{"name", "a"}}}}).ok());
  const std::string before = std::to_string(store_->CurrentVersion());
  ASSERT_TRUE(store_->Create("services", "default", {{"metadata", {{"name", "b"}}}}).ok());
  const std::string collection = "/api/v1/namespaces/default/services";
  json exact = GetJson(server_->port(),
                       collection + "?resourceVersion=" + before + "&resourceVersionMatch=Exact");
  EXPECT_EQ(ItemNames(exact), (std::vector<std::string>{"a"}));
  EXPECT_EQ(exact["metadata"]["resourceVersion"], before);
  // A limit with a version and no match means Exact too (the legacy rule).
  EXPECT_EQ(ItemNames(GetJson(server_->port(), collection + "?limit=5&resourceVersion=" + before)),
            (std::vector<std::string>{"a"}));
  EXPECT_EQ(ItemNames(GetJson(server_->port(), collection + "?resourceVersion=" + before)),
            (std::vector<std::string>{"a", "b"}));
  std::string status;
  json future = GetJson(server_->port(),
                        collection + "?resourceVersion=999&resourceVersionMatch=Exact", &status);
  EXPECT_THAT(status, ::testing::StartsWith("HTTP/1.1 504"));
  EXPECT_THAT(future["message"].get<std::string>(), HasSubstr("Too large resource version: 999"));
}

TEST_F(ApiServerHttpTest, OpenApiV2InJsonOrProtobufByAcceptHeader) {
  std::string head;
  json doc = GetJson(server_->port(), "/openapi/v2", &head);
  EXPECT_EQ(head, "HTTP/1.1 200 OK");
  EXPECT_EQ(doc["swagger"], "2.0");
  EXPECT_TRUE(doc["paths"].is_object());
  const json& slice = doc["definitions"]["io.k8s.api.discovery.v1.EndpointSlice"];
  EXPECT_EQ(slice["required"], json({"addressType", "endpoints"}));
  EXPECT_EQ(slice["x-kubernetes-group-version-kind"],
            json::parse(R"([{"group":"discovery.k8s.io","kind":"EndpointSlice","version":"v1"}])"));
  EXPECT_EQ(doc["definitions"]["io.k8s.api.core.v1.Endpoints"]["x-kubernetes-group-version-kind"][0]
               ["kind"],
            "Endpoints");
  EXPECT_EQ(doc["definitions"]["io.k8s.api.apps.v1.DeploymentSpec"]["required"],
            json({"selector", "template"}));

  // kubectl 1.20 asks for protobuf only (gnostic's openapi.v2.Document).
  RawClient proto(server_->port());
  ASSERT_TRUE(proto.Send(Get(
      "/openapi/v2", "Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf\r\n")));
  ASSERT_TRUE(proto.ReadToEof());
  const std::string& r = proto.received();
  EXPECT_THAT(r, ::testing::StartsWith("HTTP/1.1 200 OK"));
  // The dotted form, as the real server answers: Go's MIME parser rejects '@'.
  EXPECT_THAT(
      r, HasSubstr("Content-Type: application/com.github.proto-openapi.spec.v2.v1.0+protobuf"));
  std::string body = r.substr(r.find("\r\n\r\n") + 4);
  EXPECT_EQ(body.substr(0, 5), std::string("\x0a\x03"
                                           "2.0",
                                           5));  // field 1 (swagger): "2.0"
  EXPECT_THAT(body, HasSubstr("io.k8s.api.discovery.v1.EndpointSlice"));
  EXPECT_THAT(body, HasSubstr("x-kubernetes-group-version-kind"));

  RawClient refused(server_->port());
  ASSERT_TRUE(refused.Send(Get("/openapi/v2", "Accept: text/html\r\n")));
  ASSERT_TRUE(refused.ReadToEof());
  EXPECT_THAT(refused.received(), ::testing::StartsWith("HTTP/1.1 406"));
  EXPECT_EQ(refused.Body()["reason"], "NotAcceptable");
  // A preference by q-value is honoured.
  RawClient weighted(server_->port());
  ASSERT_TRUE(
      weighted.Send(Get("/openapi/v2",
                        "Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf;q=0.5, "
                        "application/json\r\n")));
  ASSERT_TRUE(weighted.ReadToEof());
  EXPECT_THAT(weighted.received(), HasSubstr("Content-Type: application/json"));
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

  // A value that is not a string does not even decode: 400, in the decoder's words.
  json replaced = *before;
  replaced["metadata"]["annotations"]["podlb.io/fault-error-rate"] = 0.5;
  {
    RawClient client(server_->port());
    ASSERT_TRUE(client.Send(Write("PUT", pods + "/p", "application/json", replaced.dump())));
    ASSERT_TRUE(client.ReadToEof());
    EXPECT_THAT(client.received(), ::testing::StartsWith("HTTP/1.1 400")) << client.received();
    EXPECT_EQ(client.Body()["message"],
              "Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal number "
              "0.5 into Go struct field ObjectMeta.metadata.annotations of type string");
  }

  // Nothing of it was stored.
  auto after = store_->Get("pods", "default", "p");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(*after, *before);

  // Deployments carry the annotations into their pods, so their template is checked too.
  json deployment = {
      {"metadata", {{"name", "d"}}},
      {"spec",
       {{"replicas", 1},
        {"selector", {{"matchLabels", {{"app", "d"}}}}},
        {"template",
         {{"metadata",
           {{"labels", {{"app", "d"}}}, {"annotations", {{"podlb.io/fault-delay", "soon"}}}}},
          {"spec", {{"containers", {{{"name", "d"}, {"image", "podlb/backend-pod"}}}}}}}}}}};
  status = send(Write("POST", "/apis/apps/v1/namespaces/default/deployments", "application/json",
                      deployment.dump()));
  EXPECT_EQ(status["details"]["causes"][0]["field"],
            "spec.template.metadata.annotations[podlb.io/fault-delay]");
  EXPECT_EQ(status["details"]["kind"], "Deployment");
  EXPECT_EQ(status["details"]["group"], "apps");
}

}  // namespace
}  // namespace podlb::sandbox
