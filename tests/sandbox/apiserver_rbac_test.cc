// RBAC enforced by the API-server stand-in, through kubectl (1.32 on PATH and Debian's 1.20):
// a ServiceAccount token from the TokenRequest API (`kubectl create token`; with 1.20, the API
// called directly), requests made with it allowed or refused by the roles of deploy/ with the
// real 403 Status, `kubectl auth can-i` through SelfSubjectAccessReview, and a token that stops
// working with its ServiceAccount.
#include <unistd.h>

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sandbox/apiserver/api_server.h"
#include "support/process.h"

namespace podlb::sandbox {
namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

enum class Kubectl { kOnPath, kLegacy };

std::string KubectlName(const ::testing::TestParamInfo<Kubectl>& info) {
  return info.param == Kubectl::kOnPath ? "OnPath" : "Legacy120";
}

class RbacTest : public ::testing::TestWithParam<Kubectl> {
 protected:
  void SetUp() override {
    if (GetParam() == Kubectl::kLegacy) {
      const char* legacy = std::getenv("PODLB_KUBECTL_LEGACY");
      if (legacy == nullptr || *legacy == '\0' || ::access(legacy, X_OK) != 0) {
        GTEST_SKIP() << "PODLB_KUBECTL_LEGACY is not set: run scripts/bootstrap.sh and re-run "
                        "cmake";
      }
      kubectl_ = legacy;
    }
    ApiServerOptions options;
    options.tokens = {"admin-token"};
    server_ = std::make_unique<ApiServer>(options, store_);
    ASSERT_TRUE(server_->Start().ok());
    admin_ = Kubeconfig("admin", "admin-token");
    std::string output;
    ASSERT_EQ(Run(admin_, {"apply", "-f", testing::SourceDir() + "/deploy"}, &output), 0)
        << output;
  }

  std::string Kubeconfig(const std::string& name, const std::string& token) {
    std::string path = dir_.path() + "/kubeconfig-" + name;
    testing::WriteFile(path, MakeKubeconfig(server_->url(), server_->ca_pem(), token));
    return path;
  }

  int Run(const std::string& kubeconfig, std::vector<std::string> args, std::string* output) {
    std::vector<std::string> argv = {kubectl_, "--kubeconfig", kubeconfig, "--cache-dir",
                                     dir_.path() + "/cache"};
    argv.insert(argv.end(), args.begin(), args.end());
    return testing::RunCommand(argv, output, 60s);
  }

  // A token for podlb-system/NAME as a user gets one: `kubectl create token`, or with kubectl
  // 1.20 (which has no such command) a POST of a TokenRequest to the subresource.
  std::string CreateToken(const std::string& name, std::string* output) {
    int rc;
    if (GetParam() == Kubectl::kLegacy) {
      std::string body = dir_.path() + "/token-request.json";
      testing::WriteFile(body, R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenRequest",)"
                               R"("spec":{"expirationSeconds":3600}})");
      rc = Run(admin_,
               {"create", "--raw",
                "/api/v1/namespaces/podlb-system/serviceaccounts/" + name + "/token", "-f", body},
               output);
      if (rc != 0) return "";
      json response = json::parse(*output, nullptr, false);
      if (response.is_discarded()) return "";
      EXPECT_EQ(response["kind"], "TokenRequest");
      EXPECT_TRUE(response["status"]["expirationTimestamp"].is_string());
      return response["status"].value("token", "");
    }
    rc = Run(admin_, {"create", "token", name, "-n", "podlb-system"}, output);
    if (rc != 0) return "";
    std::string token = *output;
    while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
    return token;
  }

  std::string kubectl_ = "kubectl";
  std::shared_ptr<ResourceStore> store_ = std::make_shared<ResourceStore>();
  std::unique_ptr<ApiServer> server_;
  testing::TempDir dir_;
  std::string admin_;
};

INSTANTIATE_TEST_SUITE_P(Kubectls, RbacTest, ::testing::Values(Kubectl::kOnPath, Kubectl::kLegacy),
                         KubectlName);

TEST_P(RbacTest, AServiceAccountTokenGetsExactlyTheRulesOfItsRoles) {
  std::string output;
  std::string token = CreateToken("podlb", &output);
  ASSERT_FALSE(token.empty()) << output;
  std::string podlb = Kubeconfig("podlb", token);

  ASSERT_EQ(Run(podlb, {"get", "endpointslices", "-A"}, &output), 0) << output;
  ASSERT_EQ(Run(podlb, {"get", "services", "-n", "podlb-system"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("podlb-control-plane"));

  EXPECT_NE(Run(podlb, {"get", "pods", "-n", "default"}, &output), 0);
  EXPECT_THAT(output, HasSubstr("pods is forbidden: User "
                                "\"system:serviceaccount:podlb-system:podlb\" cannot list "
                                "resource \"pods\" in API group \"\" in the namespace \"default\""));
  EXPECT_NE(Run(podlb, {"delete", "service", "-n", "podlb-system", "podlb-proxy"}, &output), 0);
  EXPECT_THAT(output, HasSubstr("services \"podlb-proxy\" is forbidden: User "
                                "\"system:serviceaccount:podlb-system:podlb\" cannot delete "
                                "resource \"services\" in API group \"\" in the namespace "
                                "\"podlb-system\""));
  EXPECT_TRUE(store_->Get("services", "podlb-system", "podlb-proxy").ok());
  EXPECT_NE(Run(podlb, {"get", "clusterroles"}, &output), 0);
  EXPECT_THAT(output, HasSubstr("cannot list resource \"clusterroles\" in API group "
                                "\"rbac.authorization.k8s.io\" at the cluster scope"));

  // kubectl auth can-i asks the server (SelfSubjectAccessReview) and prints yes or no.
  ASSERT_EQ(Run(podlb, {"auth", "can-i", "watch", "endpointslices.discovery.k8s.io", "-n",
                        "default"},
                &output),
            0)
      << output;
  EXPECT_THAT(output, HasSubstr("yes"));
  EXPECT_NE(Run(podlb, {"auth", "can-i", "create", "services", "-n", "default"}, &output), 0);
  EXPECT_THAT(output, HasSubstr("no"));

  // The admin stays allowed everything.
  ASSERT_EQ(Run(admin_, {"get", "clusterroles"}, &output), 0) << output;
  EXPECT_THAT(output, HasSubstr("podlb-discovery"));
}

TEST_P(RbacTest, ATokenStopsWorkingWithItsServiceAccount) {
  std::string output;
  std::string token = CreateToken("podlb-proxy", &output);
  ASSERT_FALSE(token.empty()) << output;
  std::string proxy = Kubeconfig("proxy", token);
  ASSERT_EQ(Run(proxy, {"get", "endpointslices", "-n", "default"}, &output), 0) << output;
  ASSERT_EQ(Run(admin_, {"delete", "serviceaccount", "-n", "podlb-system", "podlb-proxy"}, &output),
            0)
      << output;
  EXPECT_NE(Run(proxy, {"get", "endpointslices", "-n", "default"}, &output), 0);
  EXPECT_THAT(output, HasSubstr("Unauthorized"));
}

TEST_P(RbacTest, TokenRequestsForMissingAccountsAndShortLifetimesAreRefused) {
  std::string output;
  if (GetParam() == Kubectl::kOnPath) {
    EXPECT_NE(Run(admin_, {"create", "token", "nobody", "-n", "podlb-system"}, &output), 0);
    EXPECT_THAT(output, HasSubstr("serviceaccounts \"nobody\" not found"));
    EXPECT_NE(Run(admin_, {"create", "token", "podlb", "-n", "podlb-system", "--duration=1m"},
                  &output),
              0);
    EXPECT_THAT(output, HasSubstr("may not specify a duration less than 10 minutes"));
  } else {
    std::string body = dir_.path() + "/short.json";
    testing::WriteFile(body, R"({"kind":"TokenRequest","apiVersion":"authentication.k8s.io/v1",)"
                             R"("spec":{"expirationSeconds":60}})");
    EXPECT_NE(Run(admin_,
                  {"create", "--raw", "/api/v1/namespaces/podlb-system/serviceaccounts/podlb/token",
                   "-f", body},
                  &output),
              0);
    EXPECT_THAT(output, HasSubstr("may not specify a duration less than 10 minutes"));
  }
}

}  // namespace
}  // namespace podlb::sandbox
