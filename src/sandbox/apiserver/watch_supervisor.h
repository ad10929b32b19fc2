// WatchSupervisor: ends watches whose client went away or whose server is stopping. A watch
// thread blocks in Watcher::Next and does not read its socket, so one supervisor thread polls
// every watching socket for hang-up and closes the watcher, which wakes the watch thread.
// Register/Unregister from connection threads; Stop from the server's control thread.
#pragma once

#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "sandbox/apiserver/resource_store.h"

namespace podlb::sandbox {

class WatchSupervisor {
 public:
  WatchSupervisor();
  ~WatchSupervisor();  // stops

  // Watches `fd` for hang-up on behalf of `watcher` (which must outlive the registration).
  // Returns an id for Unregister. After Stop, the watcher is closed at once.
  uint64_t Register(int fd, Watcher* watcher);
  void Unregister(uint64_t id);
  // Closes every registered watcher and ends the supervisor thread.
  void Stop();

 private:
  struct Entry {
    int fd;
    Watcher* watcher;
    bool fired;
  };
  void Loop();
  void Wake();

  int wake_pipe_[2] = {-1, -1};
  std::thread thread_;
  absl::Mutex mu_;
  std::map<uint64_t, Entry> entries_ ABSL_GUARDED_BY(mu_);
  uint64_t next_id_ ABSL_GUARDED_BY(mu_) = 1;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace podlb::sandbox
