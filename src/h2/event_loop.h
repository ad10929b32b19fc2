// EventLoop: one epoll loop per proxy worker thread. File descriptors, timers and deferred work
// all run on the loop's own thread; the only thread-safe entry points are Post() and Stop(),
// which wake the loop through an eventfd. Objects that want one batched write per loop turn
// register with ScheduleFlush(); objects that die while events may still name them go through
// DeferDelete() so a pointer taken from epoll stays valid until the end of the turn.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <memory>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace podlb::h2 {

using Clock = std::chrono::steady_clock;

class IoHandler {
 public:
  virtual ~IoHandler() = default;
  virtual void OnIo(uint32_t events) = 0;
};

class Flushable {
 public:
  virtual ~Flushable() = default;
  virtual void Flush() = 0;

 private:
  friend class EventLoop;
  bool flush_scheduled_ = false;
};

class Deletable {
 public:
  virtual ~Deletable() = default;
};

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  absl::Status Init();

  // Loop thread only.
  void Add(int fd, uint32_t events, IoHandler* handler);
  void Modify(int fd, uint32_t events, IoHandler* handler);
  void Remove(int fd);
  uint64_t AddTimer(Clock::duration after, std::function<void()> callback);
  void CancelTimer(uint64_t id);
  void ScheduleFlush(Flushable* flushable);
  void DeferDelete(std::unique_ptr<Deletable> object);
  Clock::time_point now() const { return now_; }
  // A buffer a connection may fill and write within one call and must leave empty: frames
  // are batched into one write there, so a connection holds output of its own only while its
  // socket does not take it (10,000 idle connections hold no output buffers).
  std::string& output_scratch() { return output_scratch_; }

  // Runs until Stop(). Call on the thread that owns the loop.
  void Run();

  // Any thread.
  void Post(std::function<void()> work);
  void Stop();

 private:
  void RunPosted();
  void RunTimers();
  void RunFlushes();
  int NextTimeoutMs() const;

  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  bool stop_ = false;
  Clock::time_point now_;
  uint64_t next_timer_id_ = 1;
  std::map<std::pair<Clock::time_point, uint64_t>, std::function<void()>> timers_;
  std::unordered_map<uint64_t, Clock::time_point> timer_deadlines_;
  std::vector<Flushable*> flushes_;
  std::vector<std::unique_ptr<Deletable>> deletes_;
  std::string output_scratch_;

  absl::Mutex mu_;
  std::vector<std::function<void()>> posted_ ABSL_GUARDED_BY(mu_);
  bool stop_requested_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace podlb::h2
