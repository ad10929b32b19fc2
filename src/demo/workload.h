// Workload: the same client load for every strategy: `clients` independent channels sending
// unary calls at a fixed total rate, open loop (a slow or stuck call never delays the next), call
// i on client i % clients, so each client sends exactly the same number of calls. Run from one
// thread; completions are recorded from gRPC's threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "demo/run_data.h"
#include "demo/strategy.h"

namespace podlb::demo {

struct WorkloadOptions {
  int clients = 4;
  double rate = 200;  // calls per second, all clients together
  double duration_s = 10;
  std::chrono::milliseconds deadline{1000};
};

class Workload {
 public:
  Workload(WorkloadOptions options, std::vector<std::unique_ptr<UnaryCaller>> callers);

  // One answered call per client before the clock starts, so connection set-up and the
  // strategy's first discovery are not measured as load balancing. Gives up after `timeout`.
  absl::Status WarmUp(std::chrono::milliseconds timeout);

  // Sends for duration_s from `start`, calling `tick(elapsed_s)` about every 100 ms, then waits
  // for the calls still in flight. Returns every call, in send order.
  std::vector<CallRecord> Run(std::chrono::steady_clock::time_point start,
                              const std::function<void(double)>& tick);

  // Drops the channels (before the strategy stops what they talk to).
  void Close() { callers_.clear(); }

 private:
  const WorkloadOptions options_;
  std::vector<std::unique_ptr<UnaryCaller>> callers_;
};

}  // namespace podlb::demo
