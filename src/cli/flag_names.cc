#include "cli/flag_names.h"

#include <utility>
#include <vector>

#include "absl/strings/str_replace.h"

namespace podlb::cli {

std::string InFlagTerms(std::string_view message) {
  // Option name → the flag that sets it.
  static const std::vector<std::pair<absl::string_view, absl::string_view>> kFlags = {
      {"ProxyOptions::listeners", "--listen"},
      {"ProxyOptions::tls_cert_file", "--tls-cert"},
      {"ProxyOptions::tls_key_file", "--tls-key"},
      {"UpstreamTlsOptions::ca_file", "--upstream-ca"},
      {"UpstreamTlsOptions::cert_file", "--upstream-cert"},
      {"UpstreamTlsOptions::key_file", "--upstream-key"},
      {"XdsServerOptions::listen", "--listen"},
      {"XdsTlsOptions::cert_file", "--tls-cert"},
      {"XdsTlsOptions::key_file", "--tls-key"},
      {"CaresResolverOptions::servers", "--dns-server"},
      {"BackendPodOptions::port", "--pod-port"},
      {"WorkloadOptions::clients", "--clients"},
      {"WorkloadOptions::rate", "--rate"},
      {"WorkloadOptions::duration_s", "--duration"},
  };
  return absl::StrReplaceAll(absl::string_view(message.data(), message.size()), kFlags);
}

}  // namespace podlb::cli
