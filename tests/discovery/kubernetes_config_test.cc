// Kubeconfig and in-cluster configuration loading, and bearer-token rotation.
#include "discovery/kubernetes/kube_config.h"

#include <sys/stat.h>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/process.h"

namespace podlb {
namespace {

using ::testing::HasSubstr;

std::string Kubeconfig(const std::string& cluster_extra, const std::string& user_body,
                       const std::string& current = "dev") {
  return "apiVersion: v1\nkind: Config\n"
         "clusters:\n"
         "- name: c1\n  cluster:\n    server: https://127.0.0.1:6443\n" + cluster_extra +
         "- name: c2\n  cluster:\n    server: https://127.0.0.2:6443\n"
         "users:\n- name: u1\n  user:\n" + user_body +
         "contexts:\n"
         "- name: dev\n  context:\n    cluster: c1\n    user: u1\n    namespace: team-a\n"
         "- name: other\n  context:\n    cluster: c2\n    user: u1\n"
         "current-context: " + current + "\n";
}

TEST(KubeconfigTest, LoadsCurrentContextWithInlineData) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/config";
  testing::WriteFile(path, Kubeconfig("    certificate-authority-data: " +
                                          absl::Base64Escape("CA-PEM") + "\n",
                                      "    token: abc123\n"));
  auto config = LoadKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://127.0.0.1:6443");
  EXPECT_EQ(config->ca_pem, "CA-PEM");
  EXPECT_EQ(config->token, "abc123");
  EXPECT_EQ(config->default_namespace, "team-a");
}

TEST(KubeconfigTest, NamedContextAndRelativeFilesResolveAgainstTheKubeconfigDir) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/config";
  testing::WriteFile(path, Kubeconfig("    certificate-authority: ca.crt\n",
                                      "    tokenFile: token\n"
                                      "    client-certificate: /abs/cert.pem\n"
                                      "    client-key: key.pem\n"));
  auto config = LoadKubeconfig(path, "other");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://127.0.0.2:6443");
  EXPECT_EQ(config->token_file, dir.path() + "/token");
  EXPECT_EQ(config->client_cert_file, "/abs/cert.pem");
  EXPECT_EQ(config->client_key_file, dir.path() + "/key.pem");
  EXPECT_EQ(config->default_namespace, "");
}

TEST(KubeconfigTest, ErrorsNameTheMissingField) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/config";
  testing::WriteFile(path, Kubeconfig("", "    token: t\n", "nope"));
  auto missing_context = LoadKubeconfig(path);
  ASSERT_FALSE(missing_context.ok());
  EXPECT_THAT(std::string(missing_context.status().message()), HasSubstr("\"nope\""));
  EXPECT_THAT(std::string(missing_context.status().message()), HasSubstr("contexts"));

  testing::WriteFile(path, Kubeconfig("", "    client-certificate-data: " +
                                              absl::Base64Escape("x") + "\n"));
  auto no_key = LoadKubeconfig(path);
  ASSERT_FALSE(no_key.ok());
  EXPECT_THAT(std::string(no_key.status().message()), HasSubstr("client-key"));

  testing::WriteFile(path, "apiVersion: v1\nclusters: []\n");
  auto no_current = LoadKubeconfig(path);
  ASSERT_FALSE(no_current.ok());
  EXPECT_THAT(std::string(no_current.status().message()), HasSubstr("current-context"));

  testing::WriteFile(path, "clusters: [\n");
  EXPECT_THAT(std::string(LoadKubeconfig(path).status().message()), HasSubstr("invalid YAML"));
  EXPECT_FALSE(LoadKubeconfig(dir.path() + "/absent").ok());
}

TEST(InClusterConfigTest, ReadsTheServiceAccountMount) {
  testing::TempDir dir;
  testing::WriteFile(dir.path() + "/token", "tok-1\n");
  testing::WriteFile(dir.path() + "/ca.crt", "CA");
  testing::WriteFile(dir.path() + "/namespace", "prod\n");
  InClusterEnv env{"10.96.0.1", "443", dir.path() + "/token", dir.path() + "/ca.crt",
                   dir.path() + "/namespace"};
  auto config = LoadInClusterConfig(env);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->ca_pem, "CA");
  EXPECT_EQ(config->token_file, dir.path() + "/token");
  EXPECT_EQ(config->default_namespace, "prod");

  env.service_host = "fd00::1";
  EXPECT_EQ(LoadInClusterConfig(env)->server, "https://[fd00::1]:443");
  env.service_host = "";
  EXPECT_FALSE(LoadInClusterConfig(env).ok());
  env.service_host = "10.96.0.1";
  env.token_path = dir.path() + "/missing";
  EXPECT_THAT(std::string(LoadInClusterConfig(env).status().message()), HasSubstr("missing"));
}

TEST(BearerTokenTest, RereadsTheFileWhenItRotates) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/token";
  testing::WriteFile(path, "first\n");
  BearerToken token("", path, std::chrono::milliseconds(0));
  EXPECT_EQ(token.Current(), "first");
  testing::WriteFile(path, "second-longer\n");
  EXPECT_EQ(token.Current(), "second-longer");
  // A file caught empty mid-rewrite keeps the last token.
  testing::WriteFile(path, "");
  EXPECT_EQ(token.Current(), "second-longer");
}

TEST(BearerTokenTest, ChecksAtMostEveryRecheckUnlessInvalidated) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/token";
  testing::WriteFile(path, "first");
  BearerToken token("", path, std::chrono::hours(1));
  EXPECT_EQ(token.Current(), "first");
  testing::WriteFile(path, "other");  // same size: only a forced re-read sees it reliably
  EXPECT_EQ(token.Current(), "first");
  token.Invalidate();  // the server said 401
  EXPECT_EQ(token.Current(), "other");
}

TEST(BearerTokenTest, StaticToken) {
  BearerToken token(" static ", "");
  EXPECT_EQ(token.Current(), "static");
}

}  // namespace
}  // namespace podlb
