// EndpointSource: one discovery source (kubernetes, dns, file) that publishes into a Registry
// from threads of its own. Start/Stop are called from one control thread; HasSynced and Health
// may be called from any thread.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace podlb {

class EndpointSource {
 public:
  virtual ~EndpointSource() = default;

  // Starts background work. An error here is a configuration error (bad file, bad kubeconfig);
  // run-time failures are retried inside and reported through Health().
  virtual absl::Status Start() = 0;
  // Stops background work and joins its threads. Idempotent. Published state stays.
  virtual void Stop() = 0;

  // True once the first complete state has been published (used by /readyz).
  virtual bool HasSynced() const = 0;
  // OK while the source is current; otherwise the last error, with the last good state still
  // published.
  virtual absl::Status Health() const = 0;
  virtual std::string Name() const = 0;
};

}  // namespace podlb
