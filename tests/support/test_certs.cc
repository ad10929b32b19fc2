#include "support/test_certs.h"

#include "absl/strings/str_join.h"
#include "support/process.h"

namespace podlb::testing {
namespace {

bool Openssl(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"openssl"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::string output;
  int rc = RunCommand(argv, &output);
  EXPECT_EQ(rc, 0) << "openssl " << absl::StrJoin(args, " ") << ":\n" << output;
  return rc == 0;
}

}  // namespace

TestCa::TestCa(const std::string& dir, const std::string& name) : dir_(dir) {
  ca_ = {dir + "/" + name + "-ca.pem", dir + "/" + name + "-ca.key"};
  ok_ = Openssl({"req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-subj", "/CN=" + name + " test CA", "-days", "2", "-keyout", ca_.key, "-out",
                 ca_.cert});
}

CertFiles TestCa::Issue(const std::string& name, const std::vector<std::string>& sans) {
  CertFiles leaf{dir_ + "/" + name + ".pem", dir_ + "/" + name + ".key"};
  const std::string csr = dir_ + "/" + name + ".csr";
  const std::string ext = dir_ + "/" + name + ".ext";
  WriteFile(ext, "subjectAltName=" + absl::StrJoin(sans, ",") +
                     "\nbasicConstraints=CA:FALSE\n"
                     "extendedKeyUsage=serverAuth,clientAuth\n");
  ok_ = ok_ &&
        Openssl({"req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-subj",
                 "/CN=" + name, "-keyout", leaf.key, "-out", csr}) &&
        Openssl({"x509", "-req", "-in", csr, "-CA", ca_.cert, "-CAkey", ca_.key,
                 "-CAcreateserial", "-days", "1", "-extfile", ext, "-out", leaf.cert});
  return leaf;
}

}  // namespace podlb::testing
