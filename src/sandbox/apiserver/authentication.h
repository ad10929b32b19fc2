// Who a request to the API-server stand-in comes from: static bearer tokens (the kubeconfig's
// admin, in group system:masters; test users) and ServiceAccount tokens issued through the
// TokenRequest API (serviceaccounts/NAME/token), which authenticate as
// system:serviceaccount:NS:NAME in groups system:serviceaccounts, system:serviceaccounts:NS and
// system:authenticated, as the real server's service-account authenticator does. A ServiceAccount
// token stops working when it expires or when its ServiceAccount is deleted (its uid is bound
// into the token, as a bound token's is). Thread-safe.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

struct UserInfo {
  std::string name;
  std::vector<std::string> groups;
  bool InGroup(const std::string& group) const;
};

// The user of a ServiceAccount, as the real authenticator names it.
UserInfo ServiceAccountUser(const std::string& ns, const std::string& name);

class TokenAuthenticator {
 public:
  using Clock = std::chrono::system_clock;

  explicit TokenAuthenticator(const ResourceStore& store) : store_(store) {}

  void AddStaticToken(const std::string& token, UserInfo user);
  bool HasStaticTokens() const;

  struct IssuedToken {
    std::string token;
    Clock::time_point expires;
  };
  // A new token for the ServiceAccount object `service_account` (must carry metadata.uid).
  IssuedToken Issue(const nlohmann::json& service_account, std::chrono::seconds lifetime);

  // The user a bearer token stands for; nullopt if unknown, expired or its ServiceAccount gone.
  std::optional<UserInfo> Authenticate(const std::string& token) const;

 private:
  struct ServiceAccountToken {
    std::string ns;
    std::string name;
    std::string uid;
    Clock::time_point expires;
  };
  const ResourceStore& store_;
  mutable absl::Mutex mu_;
  std::map<std::string, UserInfo> static_tokens_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, ServiceAccountToken> issued_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb::sandbox
