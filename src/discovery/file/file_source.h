// FileSource: publishes the services of a static endpoints file and republishes when the file
// changes (inotify on its directory, so editors and atomic renames are seen). A file that fails
// to parse keeps the last good state. Owns one thread; Start/Stop from the control thread.
#pragma once

#include <set>
#include <string>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "core/logging.h"
#include "core/registry.h"
#include "discovery/source.h"

namespace podlb {

class FileSource : public EndpointSource {
 public:
  FileSource(std::string path, Registry& registry);
  ~FileSource() override;

  // Fails if the file cannot be read or parsed at start: a typo should stop the process early.
  absl::Status Start() override;
  void Stop() override;
  bool HasSynced() const override;
  absl::Status Health() const override;
  std::string Name() const override { return "file"; }

  // Reads and publishes the file once (the watch thread calls it on every change).
  absl::Status Reload();

 private:
  void WatchLoop();

  const std::string path_;
  Registry& registry_;
  LogOnChange failure_log_{LogLevel::kWarn};
  int inotify_fd_ = -1;
  int stop_fd_ = -1;  // eventfd that wakes the watch thread for Stop()
  std::thread thread_;
  std::set<ServiceKey> published_;  // keys this source published; touched by Reload only
  mutable absl::Mutex mu_;
  bool synced_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status health_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb
