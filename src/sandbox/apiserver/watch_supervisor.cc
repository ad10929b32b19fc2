#include "sandbox/apiserver/watch_supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <vector>

namespace podlb::sandbox {

WatchSupervisor::WatchSupervisor() {
  if (pipe2(wake_pipe_, O_CLOEXEC | O_NONBLOCK) != 0) {
    wake_pipe_[0] = wake_pipe_[1] = -1;
  }
  thread_ = std::thread([this] { Loop(); });
}

WatchSupervisor::~WatchSupervisor() {
  Stop();
  if (wake_pipe_[0] >= 0) ::close(wake_pipe_[0]);
  if (wake_pipe_[1] >= 0) ::close(wake_pipe_[1]);
}

void WatchSupervisor::Wake() {
  char byte = 1;
  if (wake_pipe_[1] >= 0) {
    [[maybe_unused]] ssize_t n = ::write(wake_pipe_[1], &byte, 1);
  }
}

uint64_t WatchSupervisor::Register(int fd, Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  uint64_t id = next_id_++;
  entries_[id] = Entry{fd, watcher, stopping_};
  if (stopping_) watcher->Close();
  Wake();
  return id;
}

void WatchSupervisor::Unregister(uint64_t id) {
  absl::MutexLock lock(&mu_);
  entries_.erase(id);
  Wake();
}

void WatchSupervisor::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    for (auto& [id, entry] : entries_) {
      entry.watcher->Close();
      entry.fired = true;
    }
    Wake();
  }
  if (thread_.joinable()) thread_.join();
}

void WatchSupervisor::Loop() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;
  while (true) {
    fds.clear();
    ids.clear();
    fds.push_back({wake_pipe_[0], POLLIN, 0});
    {
      absl::MutexLock lock(&mu_);
      if (stopping_) return;
      for (const auto& [id, entry] : entries_) {
        if (entry.fired) continue;
        // A watching client sends nothing; readable data or a hang-up both mean it is done.
        fds.push_back({entry.fd, POLLIN | POLLRDHUP, 0});
        ids.push_back(id);
      }
    }
    if (wake_pipe_[0] < 0) return;
    if (::poll(fds.data(), fds.size(), -1) < 0) continue;
    if (fds[0].revents != 0) {
      char buf[64];
      while (::read(wake_pipe_[0], buf, sizeof buf) > 0) {
      }
    }
    absl::MutexLock lock(&mu_);
    for (size_t i = 1; i < fds.size(); ++i) {
      if (fds[i].revents == 0) continue;
      auto it = entries_.find(ids[i - 1]);
      if (it == entries_.end() || it->second.fired) continue;
      it->second.fired = true;
      it->second.watcher->Close();
    }
  }
}

}  // namespace podlb::sandbox
