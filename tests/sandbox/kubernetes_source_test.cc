// KubernetesSource against the API-server stand-in: initial sync over TLS from a kubeconfig,
// change notifications, one watch per resource type for many services, relist after 410,
// API server outage and recovery, 401 with token rotation, 403; lists read in pages (10,000
// Services), a continue token that expires mid-list, and one source for all namespaces.
#include "discovery/kubernetes/kubernetes_source.h"

#include <atomic>
#include <chrono>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/api_server.h"
#include "support/process.h"
#include "support/registry_waiter.h"

namespace podlb {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
using nlohmann::json;

json ServiceJson(const std::string& name, json annotations = json::object(),
                 const std::string& ns = "default") {
  return json{{"apiVersion", "v1"},
              {"kind", "Service"},
              {"metadata", {{"name", name}, {"namespace", ns}, {"annotations", annotations}}},
              {"spec", {{"ports", json::array({{{"name", "grpc"}, {"port", 80}}})}}}};
}

json SliceJson(const std::string& name, const std::string& service,
               const std::vector<std::pair<std::string, bool>>& ips,
               const std::string& ns = "default") {
  json endpoints = json::array();
  for (const auto& [ip, ready] : ips)
    endpoints.push_back({{"addresses", {ip}}, {"conditions", {{"ready", ready}}}});
  return json{
      {"apiVersion", "discovery.k8s.io/v1"},
      {"kind", "EndpointSlice"},
      {"metadata",
       {{"name", name}, {"namespace", ns}, {"labels", {{"kubernetes.io/service-name", service}}}}},
      {"addressType", "IPv4"},
      {"ports", json::array({{{"name", "grpc"}, {"port", 50051}}})},
      {"endpoints", endpoints}};
}

class KubernetesSourceTest : public ::testing::Test {
 protected:
  KubernetesSourceTest() : store_(std::make_shared<sandbox::ResourceStore>()) {}

  void StartServer(bool tls, std::set<std::string> tokens = {"good"},
                   std::set<std::string> forbidden = {}, uint16_t port = 0) {
    sandbox::ApiServerOptions options;
    options.tls = tls;
    options.port = port;
    options.tokens = std::move(tokens);
    options.forbidden_tokens = std::move(forbidden);
    options.bookmark_interval = 200ms;
    options.before_list = before_list_;
    server_ = std::make_unique<sandbox::ApiServer>(options, store_);
    ASSERT_TRUE(server_->Start().ok());
  }

  void Create(const std::string& resource, const json& object) {
    auto created = store_->Create(resource, "default", object);
    ASSERT_TRUE(created.ok()) << created.status();
  }
  void Update(const std::string& resource, const json& object) {
    auto updated = store_->Update(resource, "default", object);
    ASSERT_TRUE(updated.ok()) << updated.status();
  }

  KubernetesSourceOptions Options(std::vector<std::string> services = {"greeter"}) {
    KubernetesSourceOptions options;
    options.ns = "default";
    options.services = std::move(services);
    options.backoff_initial = 20ms;
    options.backoff_max = 200ms;
    return options;
  }

  KubeConfig PlainConfig(const std::string& token = "good") {
    KubeConfig config;
    config.server = server_->url();
    config.token = token;
    return config;
  }

  [[nodiscard]] ::testing::AssertionResult WaitHealth(KubernetesSource& source, bool ok,
                                                      const std::string& needle = "") {
    return testing::WaitFor(
        [&] {
          absl::Status s = source.Health();
          return s.ok() == ok && std::string(s.message()).find(needle) != std::string::npos;
        },
        15s, ok ? "healthy source" : "Health() reporting \"" + needle + "\"");
  }

  std::shared_ptr<sandbox::ResourceStore> store_;
  // Installed on the server by StartServer (see ApiServerOptions::before_list).
  std::function<void(const std::string&, const std::string&)> before_list_;
  std::unique_ptr<sandbox::ApiServer> server_;
  Registry registry_;
  const ServiceKey grpc_key_{"default", "greeter", "grpc"};
};

TEST_F(KubernetesSourceTest, InitialSyncOverTlsFromAKubeconfig) {
  StartServer(/*tls=*/true);
  Create("services", ServiceJson("greeter", {{"podlb.io/policy", "p2c"}}));
  Create("endpointslices", SliceJson("greeter-a", "greeter", {{"10.0.0.1", true}, {"10.0.0.2", true}}));
  Create("endpointslices", SliceJson("greeter-b", "greeter", {{"10.0.0.3", true}}));
  Create("services", ServiceJson("other"));
  Create("endpointslices", SliceJson("other-a", "other", {{"10.1.0.1", true}}));

  testing::TempDir dir;
  testing::WriteFile(dir.path() + "/kubeconfig",
                     sandbox::MakeKubeconfig(server_->url(), server_->ca_pem(), "good"));
  auto config = LoadKubeconfig(dir.path() + "/kubeconfig");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_FALSE(config->ca_pem.empty());

  testing::RegistryWaiter waiter(registry_, grpc_key_);
  KubernetesSource source(*config, Options(), registry_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 3; }, 15s,
                             "three endpoints from two slices"));
  ASSERT_TRUE(WaitHealth(source, true));
  EXPECT_TRUE(source.HasSynced());
  auto set = registry_.Current(grpc_key_);
  EXPECT_THAT(testing::EligibleAddresses(*set), ElementsAre("10.0.0.1", "10.0.0.2", "10.0.0.3"));
  EXPECT_EQ(set->endpoints()[0].port, 50051);
  EXPECT_EQ(set->annotations().at("podlb.io/policy"), "p2c");
  EXPECT_EQ(registry_.Current({"default", "greeter", "80"}), set);  // one snapshot, two keys
  // Only the wanted service.
  EXPECT_EQ(registry_.Current({"default", "other", "grpc"}), nullptr);
}

TEST_F(KubernetesSourceTest, ChangesAreNotifiedAndSiblingsKept) {
  StartServer(/*tls=*/false);
  Create("services", ServiceJson("greeter"));
  Create("endpointslices", SliceJson("greeter-a", "greeter", {{"10.0.0.1", true}, {"10.0.0.2", true}}));
  Create("endpointslices", SliceJson("greeter-b", "greeter", {{"10.0.0.3", true}}));
  testing::RegistryWaiter waiter(registry_, grpc_key_);
  // Whole namespace this time.
  KubernetesSource source(PlainConfig(), Options({}), registry_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 3; }, 15s,
                             "initial three"));

  Update("endpointslices", SliceJson("greeter-a", "greeter", {{"10.0.0.1", true}, {"10.0.0.2", false}}));
  ASSERT_TRUE(waiter.WaitFor(
      [](const EndpointSet& s) { return testing::EligibleAddresses(s).size() == 2; }, 15s,
      "10.0.0.2 unready"));
  EXPECT_THAT(testing::EligibleAddresses(*waiter.Latest()), ElementsAre("10.0.0.1", "10.0.0.3"));

  ASSERT_TRUE(store_->Delete("endpointslices", "default", "greeter-b").ok());
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 2; }, 15s,
                             "slice b gone"));

  // Every pod unready: a set with no eligible endpoints, never the stale ready set.
  Update("endpointslices", SliceJson("greeter-a", "greeter", {{"10.0.0.1", false}, {"10.0.0.2", false}}));
  ASSERT_TRUE(waiter.WaitFor(
      [](const EndpointSet& s) { return testing::EligibleAddresses(s).empty(); }, 15s,
      "no eligible endpoints"));
}

TEST_F(KubernetesSourceTest, OneWatchPerResourceTypeForFiftyServices) {
  StartServer(/*tls=*/false);
  std::vector<std::string> names;
  for (int i = 0; i < 50; ++i) {
    const std::string name = "svc-" + std::to_string(i);
    names.push_back(name);
    Create("services", ServiceJson(name));
    Create("endpointslices", SliceJson(name + "-a", name, {{"10.2.0." + std::to_string(i + 1), true}}));
  }
  KubernetesSource source(PlainConfig(), Options(names), registry_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (const auto& name : names) {
          auto set = registry_.Current({"default", name, "grpc"});
          if (!set || set->endpoints().size() != 1) return false;
        }
        return true;
      },
      15s, "all 50 services published"));
  ASSERT_TRUE(testing::WaitFor([&] { return server_->WatchesOpened("endpointslices") >= 1 &&
                                            server_->WatchesOpened("services") >= 1; },
                               15s, "watches open"));
  EXPECT_EQ(server_->WatchesOpened("endpointslices"), 1u);
  EXPECT_EQ(server_->WatchesOpened("services"), 1u);
  EXPECT_EQ(server_->ListsServed("endpointslices"), 1u);
  EXPECT_EQ(server_->ListsServed("services"), 1u);
}

TEST_F(KubernetesSourceTest, OutageKeepsStateAndA410AfterCompactionRelistsCorrectly) {
  StartServer(/*tls=*/false);
  Create("services", ServiceJson("greeter"));
  Create("endpointslices", SliceJson("greeter-a", "greeter", {{"10.0.0.1", true}}));
  Create("endpointslices", SliceJson("greeter-b", "greeter", {{"10.0.0.2", true}}));
  testing::RegistryWaiter waiter(registry_, grpc_key_);
  KubernetesSource source(PlainConfig(), Options(), registry_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 2; }, 15s,
                             "initial two"));
  const uint16_t port = server_->port();

  server_->Stop();
  ASSERT_TRUE(WaitHealth(source, false, "cannot reach the API server"));
  EXPECT_THAT(testing::EligibleAddresses(*registry_.Current(grpc_key_)),
              ElementsAre("10.0.0.1", "10.0.0.2"));

  // While the client is away: slice b vanishes, slice c appears, history is compacted.
  ASSERT_TRUE(store_->Delete("endpointslices", "default", "greeter-b").ok());
  Create("endpointslices", SliceJson("greeter-c", "greeter", {{"10.0.0.9", true}}));
  store_->Compact();
  StartServer(/*tls=*/false, {"good"}, {}, port);

  ASSERT_TRUE(waiter.WaitFor(
      [](const EndpointSet& s) {
        return testing::EligibleAddresses(s) == std::vector<std::string>{"10.0.0.1", "10.0.0.9"};
      },
      15s, "relisted state without the vanished slice"));
  ASSERT_TRUE(WaitHealth(source, true));
  EXPECT_GE(server_->ListsServed("endpointslices"), 1u);  // 410 → relist (fresh counters)

  // And it keeps following changes.
  Update("endpointslices", SliceJson("greeter-c", "greeter", {{"10.0.0.9", true}, {"10.0.0.10", true}}));
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 3; }, 15s,
                             "change after recovery"));
}

TEST_F(KubernetesSourceTest, RejectedTokenLogs401KeepsStateAndRecoversAfterRotation) {
  StartServer(/*tls=*/false, {"token-1"});
  Create("services", ServiceJson("greeter"));
  Create("endpointslices", SliceJson("greeter-a", "greeter", {{"10.0.0.1", true}}));
  testing::TempDir dir;
  const std::string token_file = dir.path() + "/token";
  testing::WriteFile(token_file, "token-1\n");
  KubeConfig config = PlainConfig("");
  config.token_file = token_file;
  testing::RegistryWaiter waiter(registry_, grpc_key_);
  KubernetesSource source(config, Options(), registry_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 1; }, 15s,
                             "initial"));

  // The server now only accepts a rotated token the client has not read yet.
  const uint16_t port = server_->port();
  server_->Stop();
  StartServer(/*tls=*/false, {"token-2"}, {}, port);
  ASSERT_TRUE(WaitHealth(source, false,
                         "401 Unauthorized watching endpointslices: the token was rejected; check "
                         "the service-account token / kubeconfig user"));
  EXPECT_EQ(registry_.Current(grpc_key_)->endpoints().size(), 1u);

  testing::WriteFile(token_file, "token-2\n");  // kubelet rotates the projected token
  Update("endpointslices", SliceJson("greeter-a", "greeter", {{"10.0.0.1", true}, {"10.0.0.2", true}}));
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 2; }, 15s,
                             "change seen with the rotated token"));
  ASSERT_TRUE(WaitHealth(source, true));
}

TEST_F(KubernetesSourceTest, WrongTokenFromTheStartReports401) {
  StartServer(/*tls=*/false, {"good"});
  Create("services", ServiceJson("greeter"));
  KubernetesSource source(PlainConfig("wrong"), Options(), registry_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitHealth(source, false,
                         "kubernetes: 401 Unauthorized listing endpointslices: the token was "
                         "rejected; check the service-account token / kubeconfig user"));
  EXPECT_FALSE(source.HasSynced());
}

TEST_F(KubernetesSourceTest, ForbiddenTokenNamesTheMissingRbacRule) {
  StartServer(/*tls=*/false, {"good"}, {"no-rbac"});
  KubernetesSource source(PlainConfig("no-rbac"), Options(), registry_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitHealth(source, false,
                         "403 Forbidden listing endpointslices in \"default\": the service account "
                         "needs get/list/watch on discovery.k8s.io/endpointslices in namespace "
                         "default"));
  EXPECT_FALSE(source.HasSynced());
}

// client-go's reflector reads lists in pages of 500; so does podlb, so no single response grows
// with the cluster. 10,000 Services with a slice each: 20 pages per resource type.
TEST_F(KubernetesSourceTest, TenThousandServicesSyncThroughPages) {
  StartServer(/*tls=*/false);
  constexpr int kServices = 10000;
  std::vector<std::string> names;
  for (int i = 0; i < kServices; ++i) {
    const std::string name = "svc-" + std::to_string(i);
    names.push_back(name);
    // Headless: the sandbox's ClusterIP range (a /22) holds 1022 addresses, not 10,000.
    json service = ServiceJson(name);
    service["spec"]["clusterIP"] = "None";
    Create("services", service);
    Create(
        "endpointslices",
        SliceJson(name + "-a", name,
                  {{"10.3." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1), true}}));
  }
  KubernetesSource source(PlainConfig(), Options({}), registry_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(testing::WaitFor(
      [&] {
        for (const auto& name : names) {
          // The port-number key exists only once the Service is known too.
          auto set = registry_.Current({"default", name, "80"});
          if (!set || set->endpoints().size() != 1) return false;
        }
        return true;
      },
      25s, "all 10,000 services published"));
  EXPECT_EQ(registry_.Keys().size(), 2u * kServices);  // "grpc" and "80" for each
  EXPECT_GT(server_->ListsServed("services"), 1u);
  EXPECT_EQ(server_->ListsServed("services"), 20u);
  EXPECT_EQ(server_->ListsServed("endpointslices"), 20u);
  ASSERT_TRUE(WaitHealth(source, true));
  // And the watch starts from the list's version: a change afterwards arrives.
  testing::RegistryWaiter waiter(registry_, {"default", "svc-9999", "grpc"});
  Update("endpointslices", SliceJson("svc-9999-a", "svc-9999", {{"10.9.9.9", true}}));
  ASSERT_TRUE(waiter.WaitFor(
      [](const EndpointSet& s) {
        return testing::EligibleAddresses(s) == std::vector<std::string>{"10.9.9.9"};
      },
      15s, "the change after the paged list"));
}

// The server compacts its history while the source is between pages: the next page is 410
// Expired. The source starts the list over (client-go's reflector does the same), and converges
// on the state after the change, which the expired list never showed half of.
TEST_F(KubernetesSourceTest, ContinueTokenExpiredMidListRelistsFromTheStart) {
  std::atomic<int> service_lists{0};
  std::atomic<bool> expired{false};
  before_list_ = [&](const std::string& resource, const std::string& continue_token) {
    if (resource != "services") return;
    ++service_lists;
    if (continue_token.empty() || expired.exchange(true)) return;
    ASSERT_TRUE(store_->Delete("services", "default", "svc-3").ok());
    ASSERT_TRUE(store_->Delete("endpointslices", "default", "svc-3-a").ok());
    ASSERT_TRUE(store_->Create("services", "default", ServiceJson("svc-new")).ok());
    ASSERT_TRUE(store_
                    ->Create("endpointslices", "default",
                             SliceJson("svc-new-a", "svc-new", {{"10.4.0.9", true}}))
                    .ok());
    store_->Compact();
  };
  StartServer(/*tls=*/false);
  for (int i = 0; i < 5; ++i) {
    const std::string name = "svc-" + std::to_string(i);
    Create("services", ServiceJson(name));
    Create("endpointslices",
           SliceJson(name + "-a", name, {{"10.4.0." + std::to_string(i + 1), true}}));
  }
  KubernetesSourceOptions options = Options({});
  options.list_page_size = 2;
  KubernetesSource source(PlainConfig(), options, registry_);
  ASSERT_TRUE(source.Start().ok());
  testing::RegistryWaiter waiter(registry_, {"default", "svc-new", "80"});
  ASSERT_TRUE(waiter.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 1; }, 15s,
                             "the service created while the first list was under way"));
  ASSERT_TRUE(WaitHealth(source, true));
  EXPECT_TRUE(expired.load());
  // Page 1, the expired page 2, then a whole new list of 5 Services in pages of 2.
  EXPECT_EQ(service_lists.load(), 5);
  EXPECT_EQ(server_->ListsServed("services"), 4u);
  for (const char* name : {"svc-0", "svc-1", "svc-2", "svc-4"}) {
    auto set = registry_.Current({"default", name, "80"});
    ASSERT_TRUE(set) << name;
    EXPECT_EQ(set->endpoints().size(), 1u) << name;
  }
  auto gone = registry_.Current({"default", "svc-3", "80"});
  EXPECT_TRUE(gone == nullptr || gone->endpoints().empty());
}

TEST_F(KubernetesSourceTest, AllNamespacesIsOneListAndWatchPerResourceType) {
  StartServer(/*tls=*/false);
  auto create = [&](const std::string& ns, const json& object) {
    const std::string resource = object["kind"] == "Service" ? "services" : "endpointslices";
    auto created = store_->Create(resource, ns, object);
    ASSERT_TRUE(created.ok()) << created.status();
  };
  create("default", ServiceJson("greeter"));
  create("default", SliceJson("greeter-a", "greeter", {{"10.5.0.1", true}}));
  create("team-a", ServiceJson("greeter", json::object(), "team-a"));
  create("team-a",
         SliceJson("greeter-a", "greeter", {{"10.5.1.1", true}, {"10.5.1.2", true}}, "team-a"));
  KubernetesSourceOptions options = Options({});
  options.all_namespaces = true;
  KubernetesSource source(PlainConfig(), options, registry_);
  ASSERT_TRUE(source.Start().ok());
  testing::RegistryWaiter team_a(registry_, {"team-a", "greeter", "80"});
  ASSERT_TRUE(team_a.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 2; }, 15s,
                             "team-a/greeter"));
  auto in_default = registry_.Current({"default", "greeter", "80"});
  ASSERT_TRUE(in_default);
  EXPECT_THAT(testing::EligibleAddresses(*in_default), ElementsAre("10.5.0.1"));
  // A namespace that did not exist when the source started.
  testing::RegistryWaiter team_b(registry_, {"team-b", "api", "80"});
  create("team-b", ServiceJson("api", json::object(), "team-b"));
  create("team-b", SliceJson("api-a", "api", {{"10.5.2.1", true}}, "team-b"));
  ASSERT_TRUE(team_b.WaitFor([](const EndpointSet& s) { return s.endpoints().size() == 1; }, 15s,
                             "team-b/api, created later"));
  ASSERT_TRUE(WaitHealth(source, true));
  EXPECT_EQ(server_->ListsServed("endpointslices"), 1u);
  EXPECT_EQ(server_->WatchesOpened("endpointslices"), 1u);
  EXPECT_EQ(server_->WatchesOpened("services"), 1u);
}

TEST_F(KubernetesSourceTest, AllNamespacesRefusesAListOfServices) {
  StartServer(/*tls=*/false);
  KubernetesSourceOptions options = Options({"greeter"});
  options.all_namespaces = true;
  KubernetesSource source(PlainConfig(), options, registry_);
  absl::Status status = source.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("all namespaces"));
}

TEST_F(KubernetesSourceTest, ForbiddenClusterWideNamesTheClusterRole) {
  StartServer(/*tls=*/false, {"good"}, {"no-rbac"});
  KubernetesSourceOptions options = Options({});
  options.all_namespaces = true;
  KubernetesSource source(PlainConfig("no-rbac"), options, registry_);
  ASSERT_TRUE(source.Start().ok());
  ASSERT_TRUE(WaitHealth(source, false,
                         "403 Forbidden listing endpointslices in all namespaces: the service "
                         "account needs get/list/watch on discovery.k8s.io/endpointslices in all "
                         "namespaces (a ClusterRole and ClusterRoleBinding)"));
}

}  // namespace
}  // namespace podlb
