// KubeConfig: how to reach and authenticate to a Kubernetes API server, loaded from a kubeconfig
// file or from the in-cluster service-account mount. BearerToken serves the current token and
// re-reads a token file when it rotates. Loaders run on the caller's thread; BearerToken is
// thread-safe.
#pragma once

#include <chrono>
#include <ctime>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace podlb {

struct KubeConfig {
  std::string server;  // "https://10.0.0.1:443"
  // Trust: PEM data wins over a file; neither means the system trust store.
  std::string ca_pem;
  std::string ca_file;
  // Bearer token, or a file holding it (re-read when it changes: bound tokens rotate).
  std::string token;
  std::string token_file;
  // Client certificate authentication (PEM data or files).
  std::string client_cert_pem;
  std::string client_cert_file;
  std::string client_key_pem;
  std::string client_key_file;
  bool insecure_skip_tls_verify = false;
  // The namespace of the context / of the pod; empty if the source did not say.
  std::string default_namespace;
};

// Reads a kubeconfig (YAML). `context` empty means current-context. Relative file paths are
// resolved against the kubeconfig's directory, as kubectl does.
absl::StatusOr<KubeConfig> LoadKubeconfig(const std::string& path,
                                          const std::string& context = "");

// Inputs of the in-cluster configuration: host and port from KUBERNETES_SERVICE_HOST /
// KUBERNETES_SERVICE_PORT, the mount from the standard path (or PODLB_SERVICEACCOUNT_DIR).
struct InClusterEnv {
  std::string service_host;
  std::string service_port;
  std::string token_path = "/var/run/secrets/kubernetes.io/serviceaccount/token";
  std::string ca_path = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
  std::string namespace_path = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
};
absl::StatusOr<KubeConfig> LoadInClusterConfig(const InClusterEnv& env);

// The in-cluster inputs as this process's environment gives them: KUBERNETES_SERVICE_HOST/PORT
// (empty when unset: not in a cluster), and PODLB_SERVICEACCOUNT_DIR for the mount when set (the
// sandbox runs pods as processes of one machine, where /var/run/secrets cannot be every pod's
// own, and mounts each pod's account under its state directory). Only wiring edges call it (the
// CLI, the library's CreateChannel, the demo); everything below them takes an InClusterEnv.
InClusterEnv InClusterEnvFromProcess();

// The bearer token to send. With a token file, the file is re-read when its mtime or size
// changed, checked at most every `recheck` (kubelet rotates bound tokens well before expiry), or
// at once after Invalidate() (the server answered 401).
class BearerToken {
 public:
  BearerToken(std::string token, std::string token_file,
              std::chrono::milliseconds recheck = std::chrono::seconds(5));

  // The token now ("" if none). Never fails: a file that cannot be read keeps the last token.
  std::string Current();
  // Forces the next Current() to look at the file again.
  void Invalidate();

 private:
  void MaybeReloadLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string file_;
  const std::chrono::milliseconds recheck_;
  absl::Mutex mu_;
  std::string token_ ABSL_GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point next_check_ ABSL_GUARDED_BY(mu_){};
  struct timespec mtime_ ABSL_GUARDED_BY(mu_) {};
  off_t size_ ABSL_GUARDED_BY(mu_) = -1;
};

// Reads a whole file; NotFound / PermissionDenied name the path.
absl::StatusOr<std::string> ReadWholeFile(const std::string& path);

}  // namespace podlb
