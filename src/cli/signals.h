// Waiting for SIGINT/SIGTERM without a signal handler or globals: block the signals in every
// thread (call BlockTerminationSignals first thing in main, before threads start), then
// sigwait on them from the main thread.
#pragma once

namespace podlb::cli {

void BlockTerminationSignals();
// Returns the signal that arrived.
int WaitForTerminationSignal();

}  // namespace podlb::cli
