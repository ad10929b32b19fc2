#include "discovery/file/file_source.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "discovery/file/endpoints_file.h"

namespace podlb {

FileSource::FileSource(std::string path, Registry& registry)
    : path_(std::move(path)), registry_(registry) {}

FileSource::~FileSource() { Stop(); }

absl::Status FileSource::Reload() {
  std::ifstream in(path_);
  absl::Status status;
  if (!in) {
    status = absl::NotFoundError("file: cannot read " + path_ + ": " + std::strerror(errno) +
                                 "; keeping the last known endpoints");
  } else {
    std::stringstream content;
    content << in.rdbuf();
    auto services = ParseEndpointsFile(content.str(), path_);
    if (!services.ok()) {
      status = absl::InvalidArgumentError(std::string(services.status().message()) +
                                          "; keeping the last known endpoints");
    } else {
      std::set<ServiceKey> now;
      for (auto& svc : *services) {
        now.insert(svc.keys.begin(), svc.keys.end());
        registry_.Publish(svc.keys, std::move(svc.endpoints), std::move(svc.annotations));
      }
      // The file is the whole truth: a service that left it no longer exists.
      std::vector<ServiceKey> gone;
      for (const auto& key : published_) {
        if (!now.count(key)) gone.push_back(key);
      }
      registry_.Remove(gone);
      published_ = std::move(now);
    }
  }
  if (!status.ok()) {
    failure_log_.Log(std::string(status.message()));
  } else {
    failure_log_.Clear("file: " + path_ + " is valid again");
  }
  absl::MutexLock lock(&mu_);
  health_ = status;
  if (status.ok()) synced_ = true;
  return status;
}

absl::Status FileSource::Start() {
  if (auto status = Reload(); !status.ok()) return status;
  std::filesystem::path dir = std::filesystem::absolute(path_).parent_path();
  inotify_fd_ = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (inotify_fd_ < 0 || stop_fd_ < 0 ||
      inotify_add_watch(inotify_fd_, dir.c_str(),
                        IN_CLOSE_WRITE | IN_MOVED_TO | IN_CREATE | IN_DELETE) < 0) {
    return absl::InternalError("file: cannot watch " + dir.string() + ": " + std::strerror(errno));
  }
  thread_ = std::thread([this] { WatchLoop(); });
  return absl::OkStatus();
}

void FileSource::Stop() {
  if (stop_fd_ >= 0) {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(stop_fd_, &one, sizeof one);
  }
  if (thread_.joinable()) thread_.join();
  if (inotify_fd_ >= 0) close(inotify_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
  inotify_fd_ = stop_fd_ = -1;
}

bool FileSource::HasSynced() const {
  absl::MutexLock lock(&mu_);
  return synced_;
}

absl::Status FileSource::Health() const {
  absl::MutexLock lock(&mu_);
  return health_;
}

void FileSource::WatchLoop() {
  const std::string name = std::filesystem::path(path_).filename().string();
  alignas(inotify_event) char buf[4096];
  while (true) {
    pollfd fds[2] = {{inotify_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    if (poll(fds, 2, -1) < 0 && errno != EINTR) return;
    if (fds[1].revents) return;
    bool relevant = false;
    ssize_t n;
    while ((n = read(inotify_fd_, buf, sizeof buf)) > 0) {
      for (char* p = buf; p < buf + n;) {
        auto* event = reinterpret_cast<inotify_event*>(p);
        if (event->len > 0 && name == event->name) relevant = true;
        p += sizeof(inotify_event) + event->len;
      }
    }
    // Reload logs and records its own failures; the loop just waits for the next change.
    if (relevant) (void)Reload();
  }
}

}  // namespace podlb
