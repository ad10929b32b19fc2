#include "sandbox/apiserver/authentication.h"

#include <openssl/rand.h>

#include <algorithm>
#include <cstdlib>

#include "absl/strings/escaping.h"
#include "core/logging.h"

namespace podlb::sandbox {
namespace {

std::string RandomHex(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(raw.size())) != 1) {
    // Without a working CSPRNG no token is safe to hand out.
    LogError("apiserver: OpenSSL RAND_bytes failed; cannot issue a token");
    abort();
  }
  return absl::BytesToHexString(raw);
}

}  // namespace

bool UserInfo::InGroup(const std::string& group) const {
  return std::find(groups.begin(), groups.end(), group) != groups.end();
}

UserInfo ServiceAccountUser(const std::string& ns, const std::string& name) {
  return {"system:serviceaccount:" + ns + ":" + name,
          {"system:serviceaccounts", "system:serviceaccounts:" + ns, "system:authenticated"}};
}

void TokenAuthenticator::AddStaticToken(const std::string& token, UserInfo user) {
  absl::MutexLock lock(&mu_);
  static_tokens_[token] = std::move(user);
}

bool TokenAuthenticator::HasStaticTokens() const {
  absl::MutexLock lock(&mu_);
  return !static_tokens_.empty();
}

TokenAuthenticator::IssuedToken TokenAuthenticator::Issue(const nlohmann::json& service_account,
                                                          std::chrono::seconds lifetime) {
  const nlohmann::json& meta = service_account["metadata"];
  ServiceAccountToken entry{meta.value("namespace", ""), meta.value("name", ""),
                            meta.value("uid", ""), Clock::now() + lifetime};
  // Opaque, not a JWT: nothing here verifies signatures, and podlb only sends it back.
  IssuedToken issued{"sandbox-sa." + RandomHex(24), entry.expires};
  absl::MutexLock lock(&mu_);
  issued_[issued.token] = std::move(entry);
  return issued;
}

std::optional<UserInfo> TokenAuthenticator::Authenticate(const std::string& token) const {
  ServiceAccountToken entry;
  {
    absl::MutexLock lock(&mu_);
    if (auto it = static_tokens_.find(token); it != static_tokens_.end()) return it->second;
    auto it = issued_.find(token);
    if (it == issued_.end()) return std::nullopt;
    entry = it->second;
  }
  if (Clock::now() >= entry.expires) return std::nullopt;
  // Bound to the ServiceAccount's uid: deleting (or re-creating) the account revokes the token.
  auto account = store_.Get("serviceaccounts", entry.ns, entry.name);
  if (!account.ok() || (*account)["metadata"].value("uid", "") != entry.uid) return std::nullopt;
  return ServiceAccountUser(entry.ns, entry.name);
}

}  // namespace podlb::sandbox
