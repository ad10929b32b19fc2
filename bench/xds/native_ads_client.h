// NativeAdsFleet: xds_fanout's light load generator. Each ADS stream is an HTTP/2 stream of an
// nghttp2 client session (h2c with prior knowledge) over a non-blocking TCP socket; epoll
// loops on `threads` threads each own a share of the connections (a connection never changes
// threads, so nothing on the receive path takes a lock). It costs a few microseconds per
// response, where a grpc++ channel costs ~300, so the benchmark measures the server.
// Start/Stop are called from one controlling thread; streams' checks run on their worker.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "ads_stream_check.h"

namespace podlb::bench {

struct NativeAdsOptions {
  int port = 0;  // the ADS server on 127.0.0.1
  int connections = 1;
  int threads = 1;
  // Connections in set-up at once (connected, not every stream answered yet), across threads:
  // 10,000 connects at once would overflow the server's accept backlog and stall in SYN
  // retransmits; a window keeps the server busy without a storm.
  int connect_window = 256;
};

class NativeAdsFleet {
 public:
  // streams[i] is carried on connection i % connections (as the grpc++ client places them).
  NativeAdsFleet(NativeAdsOptions options, std::vector<std::unique_ptr<AdsStreamCheck>> streams,
                 Arrivals* arrivals);
  ~NativeAdsFleet();

  // Starts the worker threads, which connect and subscribe every stream.
  absl::Status Start();
  // Closes every connection (a stream ending now is not a failure) and joins the workers.
  void Stop();
  // The first failure reason seen, or "" if no stream failed.
  std::string FirstError() const;

  class Worker;

 private:
  friend class Worker;
  // Counts a failed stream and prints each distinct reason once (error path only).
  void StreamFailed(const std::string& reason);

  NativeAdsOptions options_;
  std::vector<std::unique_ptr<AdsStreamCheck>> streams_;
  Arrivals* arrivals_;
  std::atomic<bool> stopping_{false};
  int stop_fd_ = -1;  // eventfd, written once by Stop(): readable in every worker's epoll
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<std::thread> threads_;
  mutable absl::Mutex mu_;
  absl::flat_hash_set<std::string> reasons_ ABSL_GUARDED_BY(mu_);
  std::string first_error_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb::bench
