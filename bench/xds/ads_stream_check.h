// What one benchmark ADS stream subscribes to and how it checks what it receives, shared by
// xds_fanout's two clients (grpc++ and native nghttp2) so both measure and check the same way.
// An AdsStreamCheck belongs to the thread that reads its stream (one response at a time);
// Arrivals is shared by every stream and only touched through atomics.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "envoy/config/endpoint/v3/endpoint.pb.h"
#include "envoy/service/discovery/v3/discovery.pb.h"

namespace podlb::bench {

// The clock every arrival and change is timed on (one process, so one steady clock).
inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string ServiceName(int s);
// Endpoint j of Service s: 10.s.(j / 250).(j % 250 + 1).
std::string EndpointAddress(int s, int j);
// Each endpoint's port is kBasePort + the generation of its endpoint set.
inline constexpr int kBasePort = 1000;

// Per Service and generation: how many streams have that generation (or a newer one), and when
// the last of them got it.
struct Arrivals {
  explicit Arrivals(int services);
  static constexpr int kSlots = 4096;  // generations tracked per Service (ring)
  int services;
  std::unique_ptr<std::atomic<int>[]> count;
  std::unique_ptr<std::atomic<int64_t>[]> done_ns;
  std::vector<int> expected;  // streams watching each Service
  std::atomic<int64_t> regressions{0};
  std::atomic<int64_t> bad_content{0};
  std::atomic<int64_t> responses{0};
  std::atomic<int64_t> bytes{0};
  std::atomic<int64_t> streams_failed{0};

  size_t Slot(int s, int gen) const { return static_cast<size_t>(s) * kSlots + gen % kSlots; }
  void Reset(int s, int gen);
  void Arrive(int s, int gen, int64_t now);
};

// One stream's subscriptions (CDS + EDS of its watched Services) and its view of what it has.
class AdsStreamCheck {
 public:
  AdsStreamCheck(int id, std::vector<int> watched, int endpoints, Arrivals* arrivals);

  // The two subscribing requests, CDS first (it carries the node).
  const std::vector<envoy::service::discovery::v3::DiscoveryRequest>& subscriptions() const {
    return subscriptions_;
  }
  // Counts a decoded response of `wire_bytes`, checks every ClusterLoadAssignment in it by
  // content and records the generations it carries. `scratch` is reused between calls.
  void OnResponse(const envoy::service::discovery::v3::DiscoveryResponse& response,
                  size_t wire_bytes, int64_t now_ns,
                  envoy::config::endpoint::v3::ClusterLoadAssignment* scratch);
  // The ACK of `response` into `ack`: its subscription again with the version and nonce it
  // carried (false if no subscription has that type: nothing to ACK).
  bool Ack(const envoy::service::discovery::v3::DiscoveryResponse& response,
           envoy::service::discovery::v3::DiscoveryRequest* ack) const;
  // The same ACK serialized, appended to `out` (false if no subscription has that type). It is
  // the subscription's bytes, encoded once, followed by the two fields: protobuf allows fields
  // in any order, and this keeps an ACK to a few hundred bytes of copying.
  bool AppendAckBytes(const envoy::service::discovery::v3::DiscoveryResponse& response,
                      std::string* out) const;

 private:
  void CheckAndRecord(const envoy::config::endpoint::v3::ClusterLoadAssignment& cla, int64_t now);

  Arrivals* arrivals_;
  const int endpoints_;
  std::vector<int> watched_;
  std::map<int, int> last_gen_;
  std::vector<envoy::service::discovery::v3::DiscoveryRequest> subscriptions_;
  std::vector<std::string> ack_prefix_;  // per subscription: serialized without node
};

}  // namespace podlb::bench
