#include "demo/workload.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace podlb::demo {

Workload::Workload(WorkloadOptions options, std::vector<std::unique_ptr<UnaryCaller>> callers)
    : options_(options), callers_(std::move(callers)) {}

absl::Status Workload::WarmUp(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (size_t i = 0; i < callers_.size(); ++i) {
    std::string last_error;
    while (true) {
      // Shared with the completion callback, which may still be unlocking when we wake.
      struct Answer {
        absl::Mutex mu;
        std::optional<CallOutcome> outcome ABSL_GUARDED_BY(mu);
      };
      auto answer = std::make_shared<Answer>();
      callers_[i]->Call(std::chrono::milliseconds(500), [answer](CallOutcome outcome) {
        absl::MutexLock lock(&answer->mu);
        answer->outcome = std::move(outcome);
      });
      std::optional<CallOutcome> result;
      {
        absl::MutexLock lock(&answer->mu);
        answer->mu.Await(absl::Condition(
            +[](std::optional<CallOutcome>* r) { return r->has_value(); }, &answer->outcome));
        result = answer->outcome;
      }
      if (result->ok) break;
      last_error = result->error;
      if (std::chrono::steady_clock::now() > deadline) {
        return absl::UnavailableError(absl::StrCat("client ", i, " got no answer within ",
                                                   timeout.count(), " ms: ", last_error));
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  return absl::OkStatus();
}

std::vector<CallRecord> Workload::Run(std::chrono::steady_clock::time_point start,
                                      const std::function<void(double)>& tick) {
  const size_t clients = callers_.size();
  // A whole number of rounds, so every client sends the same number of calls.
  size_t total = static_cast<size_t>(options_.rate * options_.duration_s);
  total -= total % clients;
  const auto interval = std::chrono::duration<double>(1.0 / options_.rate);

  struct Shared {
    absl::Mutex mu;
    std::vector<CallRecord> records ABSL_GUARDED_BY(mu);
    size_t pending ABSL_GUARDED_BY(mu) = 0;
  };
  auto shared = std::make_shared<Shared>();
  {
    absl::MutexLock lock(&shared->mu);
    shared->records.resize(total);
  }
  auto next_tick = start;
  for (size_t i = 0; i < total; ++i) {
    auto when = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                            interval * static_cast<double>(i));
    // Pacing: the schedule itself is what is being produced, so sleeping to it is the point.
    std::this_thread::sleep_until(when);
    auto now = std::chrono::steady_clock::now();
    if (now >= next_tick) {
      tick(std::chrono::duration<double>(now - start).count());
      next_tick = now + std::chrono::milliseconds(100);
    }
    int client = static_cast<int>(i % clients);
    double sent_s = std::chrono::duration<double>(now - start).count();
    {
      absl::MutexLock lock(&shared->mu);
      ++shared->pending;
    }
    callers_[client]->Call(options_.deadline, [shared, i, client, sent_s, now](CallOutcome outcome) {
      double latency_ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - now).count();
      absl::MutexLock lock(&shared->mu);
      shared->records[i] = CallRecord{.client = client,
                                      .sent_s = sent_s,
                                      .latency_ms = latency_ms,
                                      .ok = outcome.ok,
                                      .pod = std::move(outcome.pod),
                                      .error = std::move(outcome.error)};
      --shared->pending;
    });
  }
  absl::MutexLock lock(&shared->mu);
  shared->mu.Await(absl::Condition(
      +[](size_t* pending) { return *pending == 0; }, &shared->pending));
  return std::move(shared->records);
}

}  // namespace podlb::demo
