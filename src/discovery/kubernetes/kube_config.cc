#include "discovery/kubernetes/kube_config.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/escaping.h"
#include "absl/strings/strip.h"
#include "core/status_macros.h"
#include "yaml-cpp/yaml.h"

namespace podlb {
namespace {

std::string Trim(std::string s) {
  return std::string(absl::StripAsciiWhitespace(absl::string_view(s)));
}

std::string ResolvePath(const std::string& base_dir, const std::string& path) {
  if (path.empty() || path[0] == '/' || base_dir.empty()) return path;
  return base_dir + "/" + path;
}

// Finds the entry named `name` in a kubeconfig list (clusters, users, contexts) and returns its
// inner map (`cluster:`, `user:`, `context:`).
absl::StatusOr<YAML::Node> FindNamed(const YAML::Node& root, const std::string& list,
                                     const std::string& inner, const std::string& name,
                                     const std::string& path) {
  const YAML::Node entries = root[list];
  if (entries && entries.IsSequence()) {
    for (const auto& entry : entries) {
      if (entry["name"] && entry["name"].as<std::string>() == name) {
        YAML::Node node = entry[inner];
        if (!node || node.IsNull()) return YAML::Node(YAML::NodeType::Map);
        if (!node.IsMap())
          return absl::InvalidArgumentError("kubeconfig " + path + ": " + list + " \"" + name +
                                            "\": " + inner + " is not a map");
        return node;
      }
    }
  }
  return absl::NotFoundError("kubeconfig " + path + ": no entry named \"" + name + "\" in " +
                             list + "; check the context's " + inner + " field");
}

std::string Str(const YAML::Node& map, const char* field) {
  const YAML::Node node = map[field];
  if (!node || node.IsNull() || !node.IsScalar()) return "";
  return node.as<std::string>();
}

absl::StatusOr<std::string> DecodeData(const YAML::Node& map, const char* field,
                                       const std::string& path) {
  std::string encoded = Str(map, field);
  if (encoded.empty()) return std::string();
  std::string decoded;
  if (!absl::Base64Unescape(encoded, &decoded))
    return absl::InvalidArgumentError("kubeconfig " + path + ": " + field +
                                      " is not valid base64");
  return decoded;
}

absl::StatusOr<KubeConfig> ParseKubeconfig(const YAML::Node& root, const std::string& path,
                                           const std::string& wanted_context) {
  std::string base_dir;
  if (auto slash = path.rfind('/'); slash != std::string::npos) base_dir = path.substr(0, slash);

  std::string context_name = wanted_context;
  if (context_name.empty()) context_name = Str(root, "current-context");
  if (context_name.empty())
    return absl::InvalidArgumentError("kubeconfig " + path +
                                      ": current-context is missing and no context was named");
  ASSIGN_OR_RETURN(YAML::Node context, FindNamed(root, "contexts", "context", context_name, path));
  const std::string cluster_name = Str(context, "cluster");
  if (cluster_name.empty())
    return absl::InvalidArgumentError("kubeconfig " + path + ": context \"" + context_name +
                                      "\" has no cluster field");
  ASSIGN_OR_RETURN(YAML::Node cluster,
                   FindNamed(root, "clusters", "cluster", cluster_name, path));

  KubeConfig config;
  config.default_namespace = Str(context, "namespace");
  config.server = Str(cluster, "server");
  if (config.server.empty())
    return absl::InvalidArgumentError("kubeconfig " + path + ": cluster \"" + cluster_name +
                                      "\" has no server field");
  ASSIGN_OR_RETURN(config.ca_pem, DecodeData(cluster, "certificate-authority-data", path));
  config.ca_file = ResolvePath(base_dir, Str(cluster, "certificate-authority"));
  config.insecure_skip_tls_verify = Str(cluster, "insecure-skip-tls-verify") == "true";

  const std::string user_name = Str(context, "user");
  if (!user_name.empty()) {
    ASSIGN_OR_RETURN(YAML::Node user, FindNamed(root, "users", "user", user_name, path));
    config.token = Str(user, "token");
    config.token_file = ResolvePath(base_dir, Str(user, "tokenFile"));
    ASSIGN_OR_RETURN(config.client_cert_pem,
                     DecodeData(user, "client-certificate-data", path));
    config.client_cert_file = ResolvePath(base_dir, Str(user, "client-certificate"));
    ASSIGN_OR_RETURN(config.client_key_pem, DecodeData(user, "client-key-data", path));
    config.client_key_file = ResolvePath(base_dir, Str(user, "client-key"));
    const bool has_cert = !config.client_cert_pem.empty() || !config.client_cert_file.empty();
    const bool has_key = !config.client_key_pem.empty() || !config.client_key_file.empty();
    if (has_cert != has_key)
      return absl::InvalidArgumentError(
          "kubeconfig " + path + ": user \"" + user_name + "\" has " +
          (has_cert ? "client-certificate but no client-key(-data)"
                    : "client-key but no client-certificate(-data)"));
    if (user["exec"] || user["auth-provider"])
      if (config.token.empty() && config.token_file.empty() && !has_cert)
        return absl::UnimplementedError("kubeconfig " + path + ": user \"" + user_name +
                                        "\" uses exec/auth-provider, which podlb does not run; "
                                        "use a token, tokenFile or client certificate");
  }
  return config;
}

}  // namespace

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    std::string what = "cannot read " + path + ": " + std::strerror(err);
    if (err == EACCES) return absl::PermissionDeniedError(what);
    return absl::NotFoundError(what);
  }
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context) {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  try {
    YAML::Node root = YAML::Load(text);
    if (!root.IsMap())
      return absl::InvalidArgumentError("kubeconfig " + path + ": not a YAML map");
    return ParseKubeconfig(root, path, context);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError("kubeconfig " + path + ": invalid YAML: " + e.what());
  }
}

absl::StatusOr<KubeConfig> LoadInClusterConfig(const InClusterEnv& env) {
  if (env.service_host.empty() || env.service_port.empty())
    return absl::FailedPreconditionError(
        "kubernetes: not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset); "
        "give a kubeconfig file instead");
  KubeConfig config;
  // An IPv6 service host needs brackets in a URL.
  const bool v6 = env.service_host.find(':') != std::string::npos;
  config.server = "https://" + (v6 ? "[" + env.service_host + "]" : env.service_host) + ":" +
                  env.service_port;
  ASSIGN_OR_RETURN(std::string token, ReadWholeFile(env.token_path));
  if (Trim(token).empty())
    return absl::FailedPreconditionError("kubernetes: service-account token " + env.token_path +
                                         " is empty; is automountServiceAccountToken off?");
  config.token_file = env.token_path;
  ASSIGN_OR_RETURN(config.ca_pem, ReadWholeFile(env.ca_path));
  config.ca_file = env.ca_path;
  if (auto ns = ReadWholeFile(env.namespace_path); ns.ok())
    config.default_namespace = Trim(*ns);
  return config;
}

InClusterEnv InClusterEnvFromProcess() {
  auto read = [](const char* name) {
    const char* value = std::getenv(name);
    return value == nullptr ? std::string() : std::string(value);
  };
  InClusterEnv env{.service_host = read("KUBERNETES_SERVICE_HOST"),
                   .service_port = read("KUBERNETES_SERVICE_PORT")};
  if (std::string dir = read("PODLB_SERVICEACCOUNT_DIR"); !dir.empty()) {
    env.token_path = dir + "/token";
    env.ca_path = dir + "/ca.crt";
    env.namespace_path = dir + "/namespace";
  }
  return env;
}

BearerToken::BearerToken(std::string token, std::string token_file,
                         std::chrono::milliseconds recheck)
    : file_(std::move(token_file)), recheck_(recheck), token_(Trim(std::move(token))) {}

std::string BearerToken::Current() {
  absl::MutexLock lock(&mu_);
  MaybeReloadLocked();
  return token_;
}

void BearerToken::Invalidate() {
  absl::MutexLock lock(&mu_);
  next_check_ = {};
  size_ = -1;  // re-read even if mtime looks unchanged (same-second rewrite)
}

void BearerToken::MaybeReloadLocked() {
  if (file_.empty()) return;
  const auto now = std::chrono::steady_clock::now();
  if (now < next_check_) return;
  next_check_ = now + recheck_;
  struct stat st {};
  if (::stat(file_.c_str(), &st) != 0) return;  // keep the last token
  if (size_ == st.st_size && mtime_.tv_sec == st.st_mtim.tv_sec &&
      mtime_.tv_nsec == st.st_mtim.tv_nsec)
    return;
  auto text = ReadWholeFile(file_);
  if (!text.ok()) return;
  std::string token = Trim(*text);
  if (token.empty()) return;  // caught mid-rewrite; try again later
  token_ = std::move(token);
  mtime_ = st.st_mtim;
  size_ = st.st_size;
}

}  // namespace podlb
