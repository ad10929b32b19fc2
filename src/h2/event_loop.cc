#include "h2/event_loop.h"

#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <string>

namespace podlb::h2 {
namespace {

// The eventfd is registered with this sentinel instead of a handler.
IoHandler* const kWakeTag = nullptr;

}  // namespace

EventLoop::EventLoop() : now_(Clock::now()) {}

EventLoop::~EventLoop() {
  deletes_.clear();
  if (wake_fd_ >= 0) close(wake_fd_);
  if (epoll_fd_ >= 0) close(epoll_fd_);
}

absl::Status EventLoop::Init() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return absl::InternalError(std::string("epoll_create1: ") + strerror(errno));
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) return absl::InternalError(std::string("eventfd: ") + strerror(errno));
  Add(wake_fd_, EPOLLIN, kWakeTag);
  return absl::OkStatus();
}

void EventLoop::Add(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
}

void EventLoop::Modify(int fd, uint32_t events, IoHandler* handler) {
  epoll_event ev{};
  ev.events = events;
  ev.data.ptr = handler;
  epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, fd, &ev);
}

void EventLoop::Remove(int fd) { epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr); }

uint64_t EventLoop::AddTimer(Clock::duration after, std::function<void()> callback) {
  uint64_t id = next_timer_id_++;
  Clock::time_point deadline = Clock::now() + after;
  timers_.emplace(std::make_pair(deadline, id), std::move(callback));
  timer_deadlines_.emplace(id, deadline);
  return id;
}

void EventLoop::CancelTimer(uint64_t id) {
  auto it = timer_deadlines_.find(id);
  if (it == timer_deadlines_.end()) return;
  timers_.erase(std::make_pair(it->second, id));
  timer_deadlines_.erase(it);
}

void EventLoop::ScheduleFlush(Flushable* flushable) {
  if (flushable->flush_scheduled_) return;
  flushable->flush_scheduled_ = true;
  flushes_.push_back(flushable);
}

void EventLoop::DeferDelete(std::unique_ptr<Deletable> object) {
  deletes_.push_back(std::move(object));
}

void EventLoop::Post(std::function<void()> work) {
  {
    absl::MutexLock lock(&mu_);
    posted_.push_back(std::move(work));
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void EventLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stop_requested_ = true;
  }
  uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void EventLoop::RunPosted() {
  uint64_t value;
  [[maybe_unused]] ssize_t n = read(wake_fd_, &value, sizeof(value));
  std::vector<std::function<void()>> work;
  {
    absl::MutexLock lock(&mu_);
    work.swap(posted_);
    if (stop_requested_) stop_ = true;
  }
  for (auto& w : work) w();
}

void EventLoop::RunTimers() {
  while (!timers_.empty() && timers_.begin()->first.first <= now_) {
    auto node = timers_.extract(timers_.begin());
    timer_deadlines_.erase(node.key().second);
    node.mapped()();
  }
}

void EventLoop::RunFlushes() {
  // Flushing one session can schedule another (a consumed window opens the peer's), so repeat
  // until quiet.
  while (!flushes_.empty()) {
    std::vector<Flushable*> batch;
    batch.swap(flushes_);
    for (Flushable* f : batch) {
      f->flush_scheduled_ = false;
      f->Flush();
    }
  }
}

int EventLoop::NextTimeoutMs() const {
  if (timers_.empty()) return -1;
  auto wait = timers_.begin()->first.first - Clock::now();
  if (wait <= Clock::duration::zero()) return 0;
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(wait).count());
}

void EventLoop::Run() {
  constexpr int kMaxEvents = 256;
  epoll_event events[kMaxEvents];
  while (!stop_) {
    RunFlushes();
    deletes_.clear();
    int n = epoll_wait(epoll_fd_, events, kMaxEvents, NextTimeoutMs());
    now_ = Clock::now();
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      auto* handler = static_cast<IoHandler*>(events[i].data.ptr);
      if (handler == kWakeTag) {
        RunPosted();
      } else {
        handler->OnIo(events[i].events);
      }
    }
    RunTimers();
  }
  RunFlushes();
  deletes_.clear();
}

}  // namespace podlb::h2
