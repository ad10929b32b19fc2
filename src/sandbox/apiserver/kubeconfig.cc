// MakeKubeconfig: the kubeconfig kubectl and the client libraries read to reach the stand-in.
#include <openssl/evp.h>

#include "fmt/format.h"
#include "sandbox/apiserver/api_server.h"

namespace podlb::sandbox {
namespace {

std::string Base64(const std::string& data) {
  std::string out(4 * ((data.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace

std::string MakeKubeconfig(const std::string& url, const std::string& ca_pem,
                           const std::string& token) {
  std::string cluster = fmt::format("    server: \"{}\"\n", url);
  if (!ca_pem.empty()) {
    cluster += fmt::format("    certificate-authority-data: {}\n", Base64(ca_pem));
  }
  std::string user =
      token.empty() ? "  user: {}\n" : fmt::format("  user:\n    token: \"{}\"\n", token);
  return fmt::format(
      "apiVersion: v1\n"
      "kind: Config\n"
      "clusters:\n"
      "- name: podlb-sandbox\n"
      "  cluster:\n"
      "{}"
      "users:\n"
      "- name: podlb-sandbox\n"
      "{}"
      "contexts:\n"
      "- name: podlb-sandbox\n"
      "  context:\n"
      "    cluster: podlb-sandbox\n"
      "    user: podlb-sandbox\n"
      "    namespace: default\n"
      "current-context: podlb-sandbox\n"
      "preferences: {{}}\n",
      cluster, user);
}

}  // namespace podlb::sandbox
