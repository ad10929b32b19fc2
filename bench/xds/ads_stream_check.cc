#include "ads_stream_check.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "xds/type_urls.h"
#include "xds/wire_format.h"

namespace podlb::bench {

using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

std::string ServiceName(int s) { return "default/svc" + std::to_string(s) + ":80"; }

std::string EndpointAddress(int s, int j) {
  return absl::StrCat("10.", s % 256, ".", j / 250, ".", j % 250 + 1);
}

Arrivals::Arrivals(int services) : services(services) {
  count = std::make_unique<std::atomic<int>[]>(static_cast<size_t>(services) * kSlots);
  done_ns = std::make_unique<std::atomic<int64_t>[]>(static_cast<size_t>(services) * kSlots);
  expected.assign(services, 0);
}

void Arrivals::Reset(int s, int gen) {
  count[Slot(s, gen)].store(0);
  done_ns[Slot(s, gen)].store(0);
}

void Arrivals::Arrive(int s, int gen, int64_t now) {
  size_t i = Slot(s, gen);
  if (count[i].fetch_add(1, std::memory_order_acq_rel) + 1 == expected[s]) done_ns[i].store(now);
}

AdsStreamCheck::AdsStreamCheck(int id, std::vector<int> watched, int endpoints,
                               Arrivals* arrivals)
    : arrivals_(arrivals), endpoints_(endpoints), watched_(std::move(watched)) {
  for (int s : watched_) last_gen_[s] = -1;
  for (auto type : {podlb::xds::kClusterType, podlb::xds::kClusterLoadAssignmentType}) {
    DiscoveryRequest r;
    r.set_type_url(std::string(type));
    for (int s : watched_) r.add_resource_names(ServiceName(s));
    ack_prefix_.push_back(r.SerializeAsString());
    if (type == podlb::xds::kClusterType) {
      r.mutable_node()->set_id("bench-" + std::to_string(id));
      r.mutable_node()->set_user_agent_name("xds_fanout");
    }
    subscriptions_.push_back(std::move(r));
  }
}

void AdsStreamCheck::OnResponse(const DiscoveryResponse& response, size_t wire_bytes,
                                int64_t now_ns, ClusterLoadAssignment* scratch) {
  arrivals_->responses.fetch_add(1, std::memory_order_relaxed);
  arrivals_->bytes.fetch_add(static_cast<int64_t>(wire_bytes), std::memory_order_relaxed);
  if (response.type_url() != podlb::xds::kClusterLoadAssignmentType) return;
  for (const auto& any : response.resources()) {
    if (!any.UnpackTo(scratch)) {
      arrivals_->bad_content.fetch_add(1);
      continue;
    }
    CheckAndRecord(*scratch, now_ns);
  }
}

bool AdsStreamCheck::Ack(const DiscoveryResponse& response, DiscoveryRequest* ack) const {
  for (const auto& sub : subscriptions_) {
    if (sub.type_url() != response.type_url()) continue;
    *ack = sub;
    ack->clear_node();
    ack->set_version_info(response.version_info());
    ack->set_response_nonce(response.nonce());
    return true;
  }
  return false;
}

bool AdsStreamCheck::AppendAckBytes(const DiscoveryResponse& response, std::string* out) const {
  for (size_t i = 0; i < subscriptions_.size(); ++i) {
    if (subscriptions_[i].type_url() != response.type_url()) continue;
    out->append(ack_prefix_[i]);
    // DiscoveryRequest: version_info = 1, response_nonce = 5.
    podlb::xds::AppendLengthDelimitedField(1, response.version_info(), out);
    podlb::xds::AppendLengthDelimitedField(5, response.nonce(), out);
    return true;
  }
  return false;
}

// Checks a decoded endpoint set by its content and records the generation it carries.
void AdsStreamCheck::CheckAndRecord(const ClusterLoadAssignment& cla, int64_t now) {
  const std::string& name = cla.cluster_name();
  int s = -1;
  if (name.size() < 15 || !absl::SimpleAtoi(name.substr(11, name.size() - 14), &s) ||
      !last_gen_.count(s)) {
    arrivals_->bad_content.fetch_add(1);
    return;
  }
  // The control plane orders endpoints its own way: check the set, not the order.
  int gen = -1;
  int count = 0;
  bool ok = true;
  std::vector<bool> seen(endpoints_, false);
  const std::string prefix = absl::StrCat("10.", s % 256, ".");
  for (const auto& locality : cla.endpoints()) {
    for (const auto& lb : locality.lb_endpoints()) {
      const auto& address = lb.endpoint().address().socket_address();
      int g = static_cast<int>(address.port_value()) - kBasePort;
      if (gen < 0) gen = g;
      int hi = 0, lo = 0;
      const std::string& a = address.address();
      size_t dot = a.rfind('.');
      ok = ok && g == gen && a.rfind(prefix, 0) == 0 && dot != std::string::npos &&
           absl::SimpleAtoi(a.substr(prefix.size(), dot - prefix.size()), &hi) &&
           absl::SimpleAtoi(a.substr(dot + 1), &lo);
      int j = hi * 250 + lo - 1;
      ok = ok && lo >= 1 && lo <= 250 && j < endpoints_ && !seen[j];
      if (ok) seen[j] = true;
      ++count;
    }
  }
  if (!ok || count != endpoints_ || gen < 0) {
    arrivals_->bad_content.fetch_add(1);
    return;
  }
  int& last = last_gen_[s];
  if (gen < last) {
    arrivals_->regressions.fetch_add(1);
    return;
  }
  // Having generation `gen` means having every one before it: they were superseded.
  for (int g = last + 1; g <= gen; ++g) arrivals_->Arrive(s, g, now);
  last = std::max(last, gen);
}

}  // namespace podlb::bench
