#include "proxy/service_balancers.h"

#include "fmt/format.h"

namespace podlb::proxy {

ServiceBalancers::ServiceBalancers(Registry& registry, balancing::BalancerOptions options)
    : registry_(registry), options_(std::move(options)) {}

std::shared_ptr<ServiceBalancing> ServiceBalancers::ForKey(const ServiceKey& key) {
  absl::MutexLock lock(&mu_);
  auto& entry = services_[key];
  if (entry) return entry;
  entry = std::make_shared<ServiceBalancing>();
  entry->key = key;
  entry->key_text = key.ToString();
  entry->slot = registry_.Slot(key);
  entry->balancer = std::make_shared<balancing::Balancer>(key, options_);
  balancing::Balancer* balancer = entry->balancer.get();
  // The subscription is the entry's last member: it ends before the balancer goes.
  entry->subscription =
      registry_.Subscribe(key, [balancer](const ServiceKey&, const EndpointSetConstSharedPtr& set) {
        balancer->Update(set, balancing::MonotonicNanos());
      });
  return entry;
}

void ServiceBalancers::Sweep() {
  std::vector<std::shared_ptr<ServiceBalancing>> gone;  // destroyed after the lock is released
  absl::MutexLock lock(&mu_);
  for (auto it = services_.begin(); it != services_.end();) {
    // use_count 1: no worker's Cluster holds it, and only ForKey (under mu_) hands it out.
    if (it->second.use_count() == 1 && registry_.Current(it->first) == nullptr) {
      gone.push_back(std::move(it->second));
      it = services_.erase(it);
    } else {
      ++it;
    }
  }
}

std::string ServiceBalancers::RenderMetrics() const {
  std::vector<std::shared_ptr<ServiceBalancing>> services;
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [_, s] : services_) services.push_back(s);
  }
  std::string out = fmt::format(
      "# HELP podlb_proxy_services Services with balancing state in the proxy.\n"
      "# TYPE podlb_proxy_services gauge\npodlb_proxy_services {}\n",
      services.size());
  const int64_t now = balancing::MonotonicNanos();
  out +=
      "# HELP podlb_proxy_request_duration_seconds Calls through the proxy by Service and status "
      "class (ok, failure: the pod or the path failed, error: an application error), from the "
      "request headers to the end of the response.\n"
      "# TYPE podlb_proxy_request_duration_seconds histogram\n";
  for (const auto& s : services) {
    for (size_t c = 0; c < balancing::kStatusClassNames.size(); ++c) {
      auto view = s->metrics.Latency(static_cast<balancing::StatusClass>(c));
      if (view.count == 0) continue;
      const std::string labels =
          fmt::format("service=\"{}\",class=\"{}\"", s->key_text, balancing::kStatusClassNames[c]);
      for (size_t b = 0; b < balancing::kLatencyBucketsSeconds.size(); ++b) {
        out += fmt::format("podlb_proxy_request_duration_seconds_bucket{{{},le=\"{}\"}} {}\n",
                           labels, balancing::kLatencyBucketsSeconds[b], view.buckets[b]);
      }
      out += fmt::format("podlb_proxy_request_duration_seconds_bucket{{{},le=\"+Inf\"}} {}\n",
                         labels, view.buckets.back());
      out += fmt::format("podlb_proxy_request_duration_seconds_sum{{{}}} {}\n", labels,
                         view.sum_seconds);
      out += fmt::format("podlb_proxy_request_duration_seconds_count{{{}}} {}\n", labels,
                         view.count);
    }
  }
  out +=
      "# HELP podlb_proxy_responses_total Calls by the gRPC status the client got "
      "(grpc_status=\"none\": the call ended without one).\n"
      "# TYPE podlb_proxy_responses_total counter\n";
  for (const auto& s : services) {
    for (int code = -1; code <= 16; ++code) {
      uint64_t n = s->metrics.calls_with_status(code);
      if (n == 0) continue;
      out += fmt::format("podlb_proxy_responses_total{{service=\"{}\",grpc_status=\"{}\"}} {}\n",
                         s->key_text, code < 0 ? std::string("none") : std::to_string(code), n);
    }
  }
  out +=
      "# HELP podlb_proxy_retries_total Calls retried on another endpoint, by reason (refused: "
      "the endpoint never processed it; unavailable: podlb.io/retry-on-unavailable).\n"
      "# TYPE podlb_proxy_retries_total counter\n";
  for (const auto& s : services) {
    out += fmt::format("podlb_proxy_retries_total{{service=\"{}\",reason=\"refused\"}} {}\n",
                       s->key_text, s->retries_refused.load(std::memory_order_relaxed));
    out += fmt::format("podlb_proxy_retries_total{{service=\"{}\",reason=\"unavailable\"}} {}\n",
                       s->key_text, s->retries_unavailable.load(std::memory_order_relaxed));
  }
  out +=
      "# HELP podlb_proxy_retry_budget_exhausted_total Retries not made because the Service's "
      "retry budget (20 % of calls plus 10/s) was spent.\n"
      "# TYPE podlb_proxy_retry_budget_exhausted_total counter\n";
  for (const auto& s : services) {
    out += fmt::format("podlb_proxy_retry_budget_exhausted_total{{service=\"{}\"}} {}\n",
                       s->key_text, s->retry_budget.exhausted_total());
  }
  struct Family {
    const char* name;
    const char* type;
    const char* help;
    double (*get)(const balancing::EndpointView&);
  } families[] = {
      {"podlb_proxy_endpoint_latency_estimate_seconds", "gauge",
       "The balancer's peak-EWMA latency estimate of an endpoint.",
       [](const balancing::EndpointView& v) { return v.rtt_estimate_ms / 1000; }},
      {"podlb_proxy_endpoint_in_flight", "gauge", "Calls in flight to an endpoint (all workers).",
       [](const balancing::EndpointView& v) { return static_cast<double>(v.in_flight); }},
      {"podlb_proxy_endpoint_ejected", "gauge", "1 while outlier detection ejects the endpoint.",
       [](const balancing::EndpointView& v) { return v.ejected ? 1.0 : 0.0; }},
      {"podlb_proxy_endpoint_ejections_total", "counter", "Times the endpoint was ejected.",
       [](const balancing::EndpointView& v) { return static_cast<double>(v.ejections); }},
      {"podlb_proxy_endpoint_failures_total", "counter",
       "Calls that failed on the endpoint (UNAVAILABLE, INTERNAL, UNKNOWN, DEADLINE_EXCEEDED, or "
       "the transport).",
       [](const balancing::EndpointView& v) { return static_cast<double>(v.failures); }},
  };
  std::vector<std::pair<std::string, std::vector<balancing::EndpointView>>> views;
  for (const auto& s : services) views.emplace_back(s->key_text, s->balancer->Describe(now));
  for (const auto& f : families) {
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, f.help, f.name, f.type);
    for (const auto& [service, endpoints] : views) {
      for (const auto& v : endpoints) {
        out += fmt::format("{}{{service=\"{}\",endpoint=\"{}\",pod=\"{}\"}} {}\n", f.name, service,
                           v.host_port, v.pod_name, f.get(v));
      }
    }
  }
  return out;
}

}  // namespace podlb::proxy
