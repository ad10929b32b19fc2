// ServiceState: what podlb knows about one Service — its spec (ports, annotations) and its
// EndpointSlices by name — merged into one endpoint list per service port. An update to one
// slice never touches its siblings. Not thread-safe: the Kubernetes source owns each instance
// under its lock.
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "core/endpoint.h"
#include "discovery/kubernetes/endpoint_slice_decoder.h"

namespace podlb {

// One service port's merged endpoints and the keys it is published under (keys[0] first).
struct Publication {
  std::vector<ServiceKey> keys;
  std::vector<Endpoint> endpoints;
  std::map<std::string, std::string> annotations;
  // The keys are gone (a removed port, a deleted Service): Registry::Remove, not Publish.
  bool removed = false;
};

class ServiceState {
 public:
  ServiceState(std::string ns, std::string name) : ns_(std::move(ns)), name_(std::move(name)) {}

  void SetService(Service service) { service_ = std::move(service); }
  void ClearService() { service_.reset(); }
  bool has_service() const { return service_.has_value(); }

  void UpsertSlice(EndpointSlice slice);
  void DeleteSlice(const std::string& slice_name) { slices_.erase(slice_name); }
  const std::map<std::string, EndpointSlice>& slices() const { return slices_; }
  // Neither a Service nor a slice: nothing left to publish.
  bool Empty() const { return !service_ && slices_.empty(); }

  // The merged state, one Publication per service port. With the Service known, each port is
  // published as `ns/name:<port-name>` and `ns/name:<port-number>` (an unnamed port by number
  // only); before the Service arrives, under the slice port's name, or its number if unnamed.
  std::vector<Publication> Build() const;

  // Build(), plus a `removed` Publication for each key published last time and gone now (a
  // removed port, a deleted Service), so consumers never keep endpoints nobody vouches for and
  // the Registry forgets the key.
  // Remembers the keys for next time.
  std::vector<Publication> TakePublications();

 private:
  std::vector<Endpoint> EndpointsForPort(const std::string& port_name,
                                         std::optional<uint16_t> unnamed_number) const;

  std::string ns_;
  std::string name_;
  std::optional<Service> service_;
  std::map<std::string, EndpointSlice> slices_;
  std::set<ServiceKey> published_;
};

}  // namespace podlb
