// Test certificates made with the `openssl` CLI at test time: a CA, and leaf certificates it
// signs for servers (with IP and DNS subject alternative names) and for clients (mTLS). Files
// land in a directory the caller owns. Test thread only.
#pragma once

#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace podlb::testing {

struct CertFiles {
  std::string cert;  // PEM certificate
  std::string key;   // PEM private key (unencrypted)
};

class TestCa {
 public:
  // Creates `dir`/`name`-ca.pem and its key. Check ok() (and the test's failures) after.
  TestCa(const std::string& dir, const std::string& name);

  bool ok() const { return ok_; }
  const std::string& cert() const { return ca_.cert; }

  // A leaf signed by this CA; `sans` like {"IP:127.0.0.2", "DNS:greeter.default.svc"}.
  CertFiles Issue(const std::string& name, const std::vector<std::string>& sans);

 private:
  std::string dir_;
  CertFiles ca_;
  bool ok_ = false;
};

}  // namespace podlb::testing
