// CertAuthority: a throw-away certificate authority for the API-server stand-in. Generates an
// EC P-256 CA and a serving certificate for 127.0.0.1 / localhost (SAN IP and DNS) signed by it,
// as PEM. Stateless after construction; call from any thread.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace podlb::sandbox {

struct ServingCredentials {
  std::string ca_cert_pem;
  std::string cert_pem;  // serving certificate
  std::string key_pem;   // its private key (PKCS#8)
};

// Builds a fresh CA and a serving certificate valid for `days` days.
absl::StatusOr<ServingCredentials> GenerateServingCredentials(int days = 365);

}  // namespace podlb::sandbox
