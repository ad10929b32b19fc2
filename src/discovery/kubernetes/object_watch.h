// ObjectWatch: follows one named object of a namespaced collection (a Pod following itself) with
// the list + watch protocol, restricted by fieldSelector=metadata.name so the API server sends
// nothing else and RBAC may grant it on that object alone. Relists on 410, retries every other
// failure with backoff (one log line per change of cause, 403s naming the verb to grant), and
// never gives up until Stop(). Runs one thread; `on_change` runs on it. Start/Stop from the
// control thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "core/logging.h"
#include "discovery/kubernetes/api_client.h"
#include "discovery/kubernetes/kube_config.h"
#include "nlohmann/json.hpp"

namespace podlb {

struct ObjectWatchOptions {
  std::string api_prefix = "/api/v1";  // "/apis/GROUP/VERSION" for a named group
  std::string plural = "pods";
  std::string rbac = "pods (core v1)";  // the resource as an error message names it
  std::string ns;
  std::string name;
  // As KubernetesSourceOptions::watch_timeout_seconds: each watch lasts [N, 2N) s.
  int watch_timeout_seconds = 300;
  std::chrono::milliseconds backoff_initial{500};
  std::chrono::milliseconds backoff_max{std::chrono::seconds(30)};
  ApiClientOptions client;
};

class ObjectWatch {
 public:
  // The object as the server last described it, or null once it does not exist (not found on a
  // list, or deleted). Called on every change, and after every relist even if nothing changed
  // (callers compare what they care about).
  using OnChange = std::function<void(const nlohmann::json* object)>;

  ObjectWatch(KubeConfig config, ObjectWatchOptions options, OnChange on_change);
  ~ObjectWatch();  // Stop()

  // Fails on configuration errors (no namespace or name, unreadable CA file); API failures are
  // retried in the background instead.
  absl::Status Start();
  void Stop();

  // True once a list succeeded (on_change has been called at least once).
  bool HasSynced() const;

 private:
  void Run();
  absl::Status ListOnce(std::string* rv);
  absl::Status WatchOnce(std::string* rv);
  absl::Status HttpError(const char* verb, const HttpResponse& response) const;
  void ReportFailure(const absl::Status& status);
  bool Sleep(std::chrono::milliseconds delay);
  double Random();  // [0, 1), for jitter

  const KubeConfig config_;
  const ObjectWatchOptions options_;
  const OnChange on_change_;
  const std::string collection_;  // path of the collection, no query
  // For messages: `pods "x"`, `in "default"`, and the two together.
  const std::string resource_;
  const std::string scope_;
  const std::string what_;
  std::unique_ptr<ApiClient> client_;
  LogOnChange failure_log_{LogLevel::kWarn};
  std::atomic<bool> cancel_{false};
  std::mt19937_64 random_{std::random_device{}()};  // the watch thread's only
  std::thread thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace podlb
