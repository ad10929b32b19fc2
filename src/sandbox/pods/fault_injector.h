// FaultInjector: a BackendPod's current PodFault, applied to each TestService call as it arrives:
// answer at once, answer with the fault's error, hold for the delay, or hold while stuck. A held
// call costs no thread: its continuation waits in a table, a delay on a callback grpc::Alarm.
// Thread-safe: gRPC's callback threads admit and cancel calls, the pod runtime sets the fault,
// the pod's Shutdown lets everything go.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "grpcpp/support/status.h"
#include "sandbox/pods/pod_fault.h"

namespace grpc {
class Alarm;
}

namespace podlb::sandbox {

class FaultInjector : public std::enable_shared_from_this<FaultInjector> {
 public:
  // How an admitted call goes on: OK means serve it now, anything else answer it with that status.
  using Continuation = std::function<void(const grpc::Status&)>;
  using Ticket = uint64_t;

  // Always owned by a shared_ptr (delay alarms hold weak references). `pod` names the pod in
  // the injected errors' messages.
  static std::shared_ptr<FaultInjector> Create(std::string pod, PodFault initial = {});
  ~FaultInjector();

  // Takes effect for the next call at once. Held calls are looked at again: a stuck call that
  // the new fault no longer holds goes on (with the new fault's error share); a delayed call
  // keeps its due time unless the new fault has no delay; under a stuck fault every held call
  // stays held.
  void SetFault(const PodFault& fault);
  PodFault fault() const;

  // Calls `next` exactly once: at once (no fault, or an injected error), when the delay has
  // passed, or when a held call is let go (by SetFault, Cancel: CANCELLED, Shutdown:
  // UNAVAILABLE). `next` may run before Admit returns, and on any thread, never under a lock.
  Ticket Admit(Continuation next);
  // The client gave up (the reactor's OnCancel): a call still held goes on with CANCELLED.
  void Cancel(Ticket ticket);
  // Lets every held call go with UNAVAILABLE, so the server's shutdown need not wait for them;
  // from now on no call is held.
  void Shutdown();

  uint64_t calls_failed() const { return failed_.load(); }          // answered with the error
  uint64_t calls_held_stuck() const { return held_stuck_.load(); }  // ever held by stuck
  size_t calls_held_now() const;                                    // delayed or stuck now

 private:
  struct Held {
    Continuation next;
    bool stuck = false;
    std::shared_ptr<grpc::Alarm> alarm;  // delayed calls only
  };

  FaultInjector(std::string pod, PodFault initial);
  void OnDelayElapsed(Ticket ticket);
  grpc::Status DecideLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::string pod_;
  mutable absl::Mutex mu_;
  PodFault fault_ ABSL_GUARDED_BY(mu_);
  // Calls decided under the current fault; spreads the error share evenly (see DecideLocked).
  uint64_t decided_ ABSL_GUARDED_BY(mu_) = 0;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  Ticket next_ticket_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<Ticket, Held> held_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> held_stuck_{0};
};

}  // namespace podlb::sandbox
