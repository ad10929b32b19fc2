// Keeps SIGPIPE from killing the process when the calling thread writes to a socket its peer
// closed: TLS writes go through write(2), which has no MSG_NOSIGNAL. The signal is blocked for
// this thread only (the write then fails with EPIPE), so embedding code keeps its own handling.
#pragma once

#include <pthread.h>
#include <signal.h>

namespace podlb {

inline void BlockSigpipeInThisThread() {
  sigset_t pipe_set;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);
}

}  // namespace podlb
