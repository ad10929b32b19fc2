// A throwaway PKI for TLS tests, made at test time with the openssl command line: self-signed
// CAs and leaf certificates signed by one of them (server: SAN IP:127.0.0.1 unless other names
// are given; client: clientAuth). Used by the xDS-port and the proxy's upstream TLS tests.
// EC P-256 keys, so a whole set takes a fraction of a second. Header-only; main thread.
#pragma once

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "support/process.h"

namespace podlb::testing {

// The openssl argv lists are laid out as command lines, not one argument per line.
// clang-format off
class TestPki {
 public:
  explicit TestPki(std::string dir) : dir_(std::move(dir)) {}

  // NAME.pem and NAME.key: a self-signed CA.
  [[nodiscard]] ::testing::AssertionResult MakeCa(const std::string& name) {
    return Run({"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", Key(name), "-out", Cert(name),
                "-days", "2", "-subj", "/CN=podlb test " + name, "-addext",
                "basicConstraints=critical,CA:TRUE", "-addext",
                "keyUsage=critical,keyCertSign,cRLSign"});
  }

  // NAME.pem and NAME.key, signed by the CA `ca`: a server certificate for 127.0.0.1, or a
  // client certificate.
  [[nodiscard]] ::testing::AssertionResult MakeLeaf(const std::string& name, const std::string& ca,
                                                    bool server) {
    return MakeLeafWith(name, ca, server ? "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"
                                         : "extendedKeyUsage=clientAuth\n");
  }

  // NAME.pem and NAME.key, signed by `ca`, for servers and clients alike, carrying `sans`
  // (e.g. {"IP:127.0.0.2", "DNS:greeter.default.svc"}).
  [[nodiscard]] ::testing::AssertionResult MakeLeaf(const std::string& name, const std::string& ca,
                                                    const std::vector<std::string>& sans) {
    std::string list;
    for (const std::string& san : sans) list += (list.empty() ? "" : ",") + san;
    return MakeLeafWith(name, ca, "subjectAltName=" + list +
                                      "\nextendedKeyUsage=serverAuth,clientAuth\n");
  }

  // clang-format on
  std::string Cert(const std::string& name) const { return dir_ + "/" + name + ".pem"; }
  std::string Key(const std::string& name) const { return dir_ + "/" + name + ".key"; }
  std::string CertPem(const std::string& name) const { return ReadFile(Cert(name)); }
  std::string KeyPem(const std::string& name) const { return ReadFile(Key(name)); }

 private:
  // clang-format off
  ::testing::AssertionResult MakeLeafWith(const std::string& name, const std::string& ca,
                                          const std::string& extensions) {
    std::string csr = dir_ + "/" + name + ".csr";
    std::string ext = dir_ + "/" + name + ".ext";
    WriteFile(ext, extensions);
    auto made = Run({"openssl", "req", "-newkey", "ec", "-pkeyopt",
                     "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", Key(name), "-out", csr,
                     "-subj", "/CN=podlb test " + name});
    if (!made) return made;
    return Run({"openssl", "x509", "-req", "-in", csr, "-CA", Cert(ca), "-CAkey", Key(ca),
                "-set_serial", std::to_string(++serial_), "-days", "2", "-extfile", ext, "-out",
                Cert(name)});
  }
  // clang-format on

  static ::testing::AssertionResult Run(const std::vector<std::string>& argv) {
    std::string output;
    int rc = RunCommand(argv, &output, std::chrono::seconds(20));
    if (rc == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure()
           << argv[0] << " " << argv[1] << " exited " << rc << ": " << output;
  }

  std::string dir_;
  int serial_ = 1000;
};

}  // namespace podlb::testing
