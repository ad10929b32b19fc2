#include "sandbox/pods/fault_injector.h"

#include <chrono>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/alarm.h"

namespace podlb::sandbox {

std::shared_ptr<FaultInjector> FaultInjector::Create(std::string pod, PodFault initial) {
  return std::shared_ptr<FaultInjector>(new FaultInjector(std::move(pod), initial));
}

FaultInjector::FaultInjector(std::string pod, PodFault initial)
    : pod_(std::move(pod)), fault_(initial) {}

// Held calls left here would never be answered; the pod shuts the injector down first. The
// alarms of delayed calls are cancelled by their destructors and find the injector gone.
FaultInjector::~FaultInjector() = default;

void FaultInjector::SetFault(const PodFault& fault) {
  std::vector<std::pair<Continuation, grpc::Status>> go;
  std::vector<std::shared_ptr<grpc::Alarm>> drop;  // destroyed outside the lock (cancels them)
  {
    absl::MutexLock lock(&mu_);
    fault_ = fault;
    decided_ = 0;
    for (auto it = held_.begin(); it != held_.end();) {
      Held& held = it->second;
      if (fault.stuck) {
        if (!held.stuck) {
          held.stuck = true;
          held_stuck_.fetch_add(1);
          drop.push_back(std::move(held.alarm));
        }
        ++it;
        continue;
      }
      if (!held.stuck && fault.delay > absl::ZeroDuration()) {
        ++it;  // still delayed, until its original due time
        continue;
      }
      go.emplace_back(std::move(held.next), DecideLocked());
      drop.push_back(std::move(held.alarm));
      it = held_.erase(it);
    }
  }
  drop.clear();
  for (auto& [next, status] : go) next(status);
}

PodFault FaultInjector::fault() const {
  absl::MutexLock lock(&mu_);
  return fault_;
}

FaultInjector::Ticket FaultInjector::Admit(Continuation next) {
  grpc::Status status;
  std::shared_ptr<grpc::Alarm> alarm;
  absl::Duration delay;
  Ticket ticket;
  {
    absl::MutexLock lock(&mu_);
    ticket = next_ticket_++;
    if (!shut_down_ && fault_.stuck) {
      held_[ticket] = Held{std::move(next), true, nullptr};
      held_stuck_.fetch_add(1);
      return ticket;
    }
    if (!shut_down_ && fault_.delay > absl::ZeroDuration()) {
      alarm = std::make_shared<grpc::Alarm>();
      delay = fault_.delay;
      held_[ticket] = Held{std::move(next), false, alarm};
    } else {
      status = DecideLocked();
    }
  }
  if (alarm) {
    // Set outside the lock: our own reference keeps the alarm alive even if SetFault or Cancel
    // let the call go meanwhile, in which case the alarm's callback finds no held call.
    std::weak_ptr<FaultInjector> weak = weak_from_this();
    alarm->Set(std::chrono::system_clock::now() + absl::ToChronoMicroseconds(delay),
               [weak, ticket](bool) {
                 if (auto self = weak.lock()) self->OnDelayElapsed(ticket);
               });
    return ticket;
  }
  next(status);
  return ticket;
}

void FaultInjector::OnDelayElapsed(Ticket ticket) {
  Continuation next;
  grpc::Status status;
  std::shared_ptr<grpc::Alarm> alarm;  // this callback's own alarm: freed after it returns
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(ticket);
    if (it == held_.end() || it->second.stuck) return;
    next = std::move(it->second.next);
    alarm = std::move(it->second.alarm);
    held_.erase(it);
    status = DecideLocked();
  }
  next(status);
}

void FaultInjector::Cancel(Ticket ticket) {
  Continuation next;
  std::shared_ptr<grpc::Alarm> alarm;
  {
    absl::MutexLock lock(&mu_);
    auto it = held_.find(ticket);
    if (it == held_.end()) return;
    next = std::move(it->second.next);
    alarm = std::move(it->second.alarm);
    held_.erase(it);
  }
  alarm.reset();
  next(grpc::Status(grpc::StatusCode::CANCELLED, "the client cancelled the call"));
}

void FaultInjector::Shutdown() {
  std::map<Ticket, Held> held;
  {
    absl::MutexLock lock(&mu_);
    shut_down_ = true;
    held.swap(held_);
  }
  for (auto& [ticket, call] : held) {
    call.alarm.reset();
    call.next(grpc::Status(grpc::StatusCode::UNAVAILABLE,
                           absl::StrCat("pod ", pod_, " is shutting down")));
  }
}

size_t FaultInjector::calls_held_now() const {
  absl::MutexLock lock(&mu_);
  return held_.size();
}

grpc::Status FaultInjector::DecideLocked() {
  double rate = fault_.error_rate;
  if (shut_down_ || rate <= 0) return grpc::Status::OK;
  // Call n fails when floor((n+1)·rate) steps past floor(n·rate): exactly `rate` of any run of
  // calls fails, evenly spread (0.5 fails every other call), so short tests see the share the
  // annotation asked for instead of a random sample of it.
  double n = static_cast<double>(decided_++);
  if (std::floor((n + 1) * rate) <= std::floor(n * rate)) return grpc::Status::OK;
  failed_.fetch_add(1);
  return grpc::Status(
      static_cast<grpc::StatusCode>(static_cast<int>(fault_.error_code)),
      absl::StrCat("pod ", pod_, ": fault injected by ", kFaultErrorRateAnnotation, "=", rate));
}

}  // namespace podlb::sandbox
