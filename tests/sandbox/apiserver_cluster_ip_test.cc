// ClusterIPs allocated by the API-server stand-in, as the real server's Service storage does:
// a Service without one gets the next free address of 127.0.96.0/22 with the fields the real
// server defaults alongside; a requested free address is honoured; a taken one, one outside the
// range or not an IP is refused with the real message; an update may omit the address (kept)
// but not change it; a delete frees it; headless Services keep "None". Checked on the store and
// through kubectl (apply twice is a no-op that keeps the address; `get svc` shows it).
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/api_server.h"
#include "sandbox/apiserver/cluster_ip_allocator.h"
#include "sandbox/apiserver/object_validation.h"
#include "sandbox/seed_objects.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

json Service(const std::string& name, const std::string& cluster_ip = "") {
  json service = {
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", {{"name", name}, {"namespace", "default"}}},
      {"spec",
       {{"selector", {{"app", name}}},
        {"ports", json::array({{{"name", "grpc"}, {"port", 80}, {"targetPort", 8080}}})}}}};
  if (!cluster_ip.empty()) service["spec"]["clusterIP"] = cluster_ip;
  return service;
}

std::string ClusterIpOf(ResourceStore& store, const std::string& name) {
  auto service = store.Get("services", "default", name);
  return service.ok() ? (*service)["spec"].value("clusterIP", "<unset>") : "<missing>";
}

TEST(ClusterIpTest, CreateAllocatesFromTheRangeWithTheFieldsTheRealServerDefaults) {
  ResourceStore store;
  auto a = store.Create("services", "default", Service("a"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ((*a)["spec"]["clusterIP"], "127.0.96.1");
  EXPECT_EQ((*a)["spec"]["clusterIPs"], json::array({"127.0.96.1"}));
  EXPECT_EQ((*a)["spec"]["ipFamilies"], json::array({"IPv4"}));
  EXPECT_EQ((*a)["spec"]["ipFamilyPolicy"], "SingleStack");
  // "" asks for an allocation as a missing field does.
  ASSERT_TRUE(store.Create("services", "default", Service("b", "")).ok());
  json c = Service("c");
  c["spec"]["clusterIP"] = "";
  ASSERT_TRUE(store.Create("services", "default", c).ok());
  EXPECT_EQ(ClusterIpOf(store, "b"), "127.0.96.2");
  EXPECT_EQ(ClusterIpOf(store, "c"), "127.0.96.3");
}

TEST(ClusterIpTest, ARangeOfItsOwnIsUsedWhole) {
  auto cidr = ParseServiceCidr("127.104.7.0/29");
  ASSERT_TRUE(cidr.ok()) << cidr.status();
  ResourceStore store(100, *cidr);
  for (int i = 1; i <= 6; ++i) {
    auto s = store.Create("services", "default", Service("s" + std::to_string(i)));
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ((*s)["spec"]["clusterIP"], "127.104.7." + std::to_string(i));
  }
  auto full = store.Create("services", "default", Service("s7"));
  ASSERT_EQ(full.status().code(), absl::StatusCode::kInternal);
  EXPECT_THAT(full.status().message(), ::testing::HasSubstr("range is full (127.104.7.0/29"));
  auto outside = store.Create("services", "default", Service("x", "127.0.96.1"));
  EXPECT_THAT(outside.status().message(),
              ::testing::HasSubstr("The range of valid IPs is 127.104.7.0/29"));
}

TEST(ClusterIpTest, ServiceCidrMustBeALoopbackBlock) {
  for (const char* bad : {"10.96.0.0/12", "127.0.96.0", "127.0.96.0/8", "127.0.96.0/30",
                          "127.0.96.1/24", "nonsense/24", "127.0.96.0/x"}) {
    EXPECT_FALSE(ParseServiceCidr(bad).ok()) << bad;
  }
  auto good = ParseServiceCidr("127.0.96.0/22");
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(good->size, 1024u);
}

TEST(ClusterIpTest, HeadlessStaysNoneAndTakesNoAddress) {
  ResourceStore store;
  auto headless = store.Create("services", "default", Service("h", "None"));
  ASSERT_TRUE(headless.ok()) << headless.status();
  EXPECT_EQ((*headless)["spec"]["clusterIP"], "None");
  EXPECT_EQ((*headless)["spec"]["clusterIPs"], json::array({"None"}));
  ASSERT_TRUE(store.Create("services", "default", Service("a")).ok());
  EXPECT_EQ(ClusterIpOf(store, "a"), "127.0.96.1");
  // ExternalName Services have no ClusterIP either.
  json external = Service("x");
  external["spec"] = {{"type", "ExternalName"}, {"externalName", "example.com"}};
  auto created = store.Create("services", "default", external);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE((*created)["spec"].contains("clusterIP"));
}

TEST(ClusterIpTest, ARequestedFreeAddressIsHonouredAndATakenOneRefused) {
  ResourceStore store;
  ASSERT_TRUE(store.Create("services", "default", Service("a", "127.0.97.200")).ok());
  EXPECT_EQ(ClusterIpOf(store, "a"), "127.0.97.200");
  auto taken = store.Create("services", "default", Service("b", "127.0.97.200"));
  ASSERT_EQ(taken.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(taken.status().message(),
            "Service \"b\" is invalid: spec.clusterIPs: Invalid value: "
            "[]string{\"127.0.97.200\"}: failed to allocate IP 127.0.97.200: provided IP is "
            "already allocated");
  json causes = StatusCausesOf(taken.status());
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0]["field"], "spec.clusterIPs");
  EXPECT_EQ(causes[0]["reason"], "FieldValueInvalid");
  EXPECT_EQ(ClusterIpOf(store, "b"), "<missing>");
  // An allocated address is taken too; a refused create took nothing.
  ASSERT_TRUE(store.Create("services", "default", Service("c")).ok());
  EXPECT_EQ(ClusterIpOf(store, "c"), "127.0.96.1");
  EXPECT_EQ(store.Create("services", "default", Service("d", "127.0.96.1")).status().code(),
            absl::StatusCode::kInvalidArgument);
  // A create refused for its name (it exists) does not keep the address it asked for.
  EXPECT_EQ(store.Create("services", "default", Service("a", "127.0.97.201")).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_TRUE(store.Create("services", "default", Service("e", "127.0.97.201")).ok());
}

TEST(ClusterIpTest, AnAddressOutsideTheRangeOrNotAnAddressIsRefused) {
  ResourceStore store;
  auto outside = store.Create("services", "default", Service("a", "10.0.0.1"));
  EXPECT_EQ(outside.status().message(),
            "Service \"a\" is invalid: spec.clusterIPs: Invalid value: []string{\"10.0.0.1\"}: "
            "failed to allocate IP 10.0.0.1: the provided IP (10.0.0.1) is not in the valid "
            "range. The range of valid IPs is 127.0.96.0/22");
  // The network and broadcast addresses of the range are not handed out either.
  EXPECT_EQ(store.Create("services", "default", Service("a", "127.0.96.0")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(store.Create("services", "default", Service("a", "127.0.99.255")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(store.Create("services", "default", Service("a", "127.0.99.254")).ok());
  auto garbage = store.Create("services", "default", Service("b", "banana"));
  EXPECT_EQ(garbage.status().message(),
            "Service \"b\" is invalid: spec.clusterIPs[0]: Invalid value: \"banana\": must be a "
            "valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)");
}

TEST(ClusterIpTest, AnUpdateKeepsTheAddressAndMayNotChangeIt) {
  ResourceStore store;
  auto created = store.Create("services", "default", Service("a"));
  ASSERT_TRUE(created.ok());
  // A replace with the manifest as written (no clusterIP) keeps the one allocated.
  json replaced = Service("a");
  replaced["metadata"]["labels"] = {{"tier", "backend"}};
  auto updated = store.Update("services", "default", replaced);
  ASSERT_TRUE(updated.ok()) << updated.status();
  EXPECT_EQ((*updated)["spec"]["clusterIP"], "127.0.96.1");
  EXPECT_EQ((*updated)["spec"]["clusterIPs"], json::array({"127.0.96.1"}));
  EXPECT_EQ((*updated)["spec"]["ipFamilyPolicy"], "SingleStack");
  // The same replace again is no change at all.
  auto same = store.Update("services", "default", replaced);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ((*same)["metadata"]["resourceVersion"], (*updated)["metadata"]["resourceVersion"]);

  json moved = *updated;
  moved["spec"]["clusterIP"] = "127.0.96.9";
  moved["spec"]["clusterIPs"] = json::array({"127.0.96.9"});
  auto refused = store.Update("services", "default", moved);
  ASSERT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.status().message(),
            "Service \"a\" is invalid: spec.clusterIPs[0]: Invalid value: "
            "[]string{\"127.0.96.9\"}: may not change once set");
  json headless = *updated;
  headless["spec"]["clusterIP"] = "None";
  headless["spec"].erase("clusterIPs");
  EXPECT_EQ(store.Update("services", "default", headless).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ClusterIpOf(store, "a"), "127.0.96.1");
  // The address 127.0.96.9 was never taken.
  EXPECT_TRUE(store.Create("services", "default", Service("b", "127.0.96.9")).ok());
}

TEST(ClusterIpTest, DeleteFreesTheAddress) {
  ResourceStore store;
  ASSERT_TRUE(store.Create("services", "default", Service("a", "127.0.98.7")).ok());
  EXPECT_EQ(store.Create("services", "default", Service("b", "127.0.98.7")).status().code(),
            absl::StatusCode::kInvalidArgument);
  ASSERT_TRUE(store.Delete("services", "default", "a").ok());
  EXPECT_TRUE(store.Create("services", "default", Service("b", "127.0.98.7")).ok());
}

TEST(ClusterIpTest, AllocationMovesOnSoAFreedAddressIsNotReusedAtOnce) {
  ClusterIpAllocator allocator;
  json a = Service("a"), b = Service("b"), c = Service("c");
  ASSERT_TRUE(allocator.Allocate("a", a).ok());
  ASSERT_TRUE(allocator.Allocate("b", b).ok());
  allocator.Release(a);
  ASSERT_TRUE(allocator.Allocate("c", c).ok());
  EXPECT_EQ(c["spec"]["clusterIP"], "127.0.96.3");
  EXPECT_EQ(allocator.allocated(), 2u);
}

TEST(ClusterIpTest, AFullRangeIsAnInternalErrorAndHeadlessServicesStillFit) {
  ResourceStore store;
  // 1022 addresses: 127.0.96.1 to 127.0.99.254.
  for (int i = 0; i < 1022; ++i) {
    ASSERT_TRUE(store.Create("services", "default", Service("s" + std::to_string(i))).ok()) << i;
  }
  auto full = store.Create("services", "default", Service("full"));
  ASSERT_EQ(full.status().code(), absl::StatusCode::kInternal);  // the real server's 500
  EXPECT_THAT(std::string(full.status().message()),
              ::testing::StartsWith("Internal error occurred: failed to allocate a serviceIP: "
                                    "range is full"));
  EXPECT_EQ(ClusterIpOf(store, "full"), "<missing>");
  EXPECT_TRUE(store.Create("services", "default", Service("headless", "None")).ok());
  ASSERT_TRUE(store.Delete("services", "default", "s7").ok());
  EXPECT_TRUE(store.Create("services", "default", Service("full")).ok());
  EXPECT_EQ(ClusterIpOf(store, "full"), "127.0.96.8");
}

// Through kubectl and the HTTP API: the shapes a user sees.
class ClusterIpKubectlTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ApiServerOptions options;
    options.tokens = {"admin-token"};
    server_ = std::make_unique<ApiServer>(options, store_);
    ASSERT_TRUE(server_->Start().ok());
    kubeconfig_ = dir_.path() + "/kubeconfig";
    testing::WriteFile(kubeconfig_,
                       MakeKubeconfig(server_->url(), server_->ca_pem(), "admin-token"));
  }

  int Run(std::vector<std::string> args, std::string* output) {
    std::vector<std::string> argv = {"kubectl", "--kubeconfig", kubeconfig_, "--cache-dir",
                                     dir_.path() + "/cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, output, 60s);
  }

  std::string Manifest(const std::string& name, const std::string& extra_spec = "") {
    std::string path = dir_.path() + "/" + name + ".yaml";
    testing::WriteFile(path, "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name +
                                 "\n  namespace: default\nspec:\n  selector: {app: " + name +
                                 "}\n  ports:\n  - {name: grpc, port: 80, targetPort: 8080}\n" +
                                 extra_spec);
    return path;
  }

  std::shared_ptr<ResourceStore> store_ = std::make_shared<ResourceStore>();
  std::unique_ptr<ApiServer> server_;
  testing::TempDir dir_;
  std::string kubeconfig_;
};

TEST_F(ClusterIpKubectlTest, ApplyTwiceKeepsTheAllocatedAddressAndChangesNothing) {
  std::string manifest = Manifest("web");
  std::string output;
  ASSERT_EQ(Run({"apply", "-f", manifest}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("service/web created"));
  auto first = store_->Get("services", "default", "web");
  ASSERT_TRUE(first.ok());
  std::string ip = (*first)["spec"]["clusterIP"];
  EXPECT_EQ(ip, "127.0.96.1");
  uint64_t version = store_->CurrentVersion();
  ASSERT_EQ(Run({"apply", "-f", manifest}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("service/web unchanged"));
  EXPECT_EQ(store_->CurrentVersion(), version);
  EXPECT_EQ(ClusterIpOf(*store_, "web"), ip);
  // A changed manifest is a patch that leaves the address alone.
  manifest = Manifest("web", "  sessionAffinity: ClientIP\n");
  ASSERT_EQ(Run({"apply", "-f", manifest}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("service/web configured"));
  EXPECT_EQ(ClusterIpOf(*store_, "web"), ip);
  // Server-side apply and a replace of the manifest keep it as well.
  ASSERT_EQ(Run({"apply", "--server-side", "-f", manifest}, &output), 0) << output;
  EXPECT_EQ(ClusterIpOf(*store_, "web"), ip);
  ASSERT_EQ(Run({"replace", "-f", manifest}, &output), 0) << output;
  EXPECT_EQ(ClusterIpOf(*store_, "web"), ip);

  ASSERT_EQ(Run({"get", "svc", "web"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("CLUSTER-IP"));
  EXPECT_THAT(output, ::testing::ContainsRegex("web +ClusterIP +127\\.0\\.96\\.1 "));
}

TEST_F(ClusterIpKubectlTest, TakenAndChangedAddressesAreRefusedWithTheRealMessages) {
  std::string output;
  ASSERT_EQ(Run({"create", "-f", Manifest("a", "  clusterIP: 127.0.97.5\n")}, &output), 0)
      << output;
  EXPECT_EQ(ClusterIpOf(*store_, "a"), "127.0.97.5");
  EXPECT_NE(Run({"create", "-f", Manifest("b", "  clusterIP: 127.0.97.5\n")}, &output), 0);
  EXPECT_THAT(output, HasSubstr("The Service \"b\" is invalid: spec.clusterIPs: Invalid value: "
                                "[]string{\"127.0.97.5\"}: failed to allocate IP 127.0.97.5: "
                                "provided IP is already allocated"));
  EXPECT_NE(Run({"create", "-f", Manifest("b", "  clusterIP: 10.1.2.3\n")}, &output), 0);
  EXPECT_THAT(output, HasSubstr("is not in the valid range. The range of valid IPs is "
                                "127.0.96.0/22"));
  EXPECT_EQ(ClusterIpOf(*store_, "b"), "<missing>");
  EXPECT_NE(Run({"patch", "svc", "a", "-p",
                 R"({"spec":{"clusterIP":"127.0.97.6","clusterIPs":["127.0.97.6"]}})"},
                &output),
            0);
  EXPECT_THAT(output, HasSubstr("The Service \"a\" is invalid: spec.clusterIPs[0]: Invalid "
                                "value: []string{\"127.0.97.6\"}: may not change once set"));
  EXPECT_EQ(ClusterIpOf(*store_, "a"), "127.0.97.5");
  // Deleted, its address is free for the next Service that asks.
  ASSERT_EQ(Run({"delete", "svc", "a"}, &output), 0) << output;
  ASSERT_EQ(Run({"create", "-f", Manifest("b", "  clusterIP: 127.0.97.5\n")}, &output), 0)
      << output;
  EXPECT_EQ(ClusterIpOf(*store_, "b"), "127.0.97.5");
}

}  // namespace
}  // namespace podlb::sandbox
