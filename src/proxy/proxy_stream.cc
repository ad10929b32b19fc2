#include "proxy/proxy_stream.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/numbers.h"
#include "balancing/endpoint_stats.h"
#include "core/logging.h"
#include "proxy/cluster.h"
#include "proxy/downstream_session.h"
#include "h2/grpc_util.h"
#include "proxy/upstream_session.h"

namespace podlb::proxy {

using h2::kGrpcDeadlineExceeded;
using h2::kGrpcUnavailable;
using h2::kGrpcUnknown;
using h2::ParseGrpcTimeout;
using h2::PercentEncode;
namespace {

// Request bytes kept after they went upstream, so a refused stream can be replayed elsewhere.
// A unary gRPC request fits; a long client stream gives up retries rather than memory.
constexpr size_t kRetryBufferLimit = 64 * 1024;

// The grpc-status of a header block (trailers, or a trailers-only response); a response
// without one is UNKNOWN to gRPC clients.
int GrpcStatusOf(const HeaderBlock& block) {
  int code = kGrpcUnknown;
  if (auto value = block.Find("grpc-status")) {
    if (!absl::SimpleAtoi(std::string(*value), &code) || code < 0 || code > 16) code = kGrpcUnknown;
  }
  return code;
}

// How close to its grpc-timeout a client reset still counts as the deadline passing.
constexpr auto kDeadlineSlack = std::chrono::milliseconds(20);

int64_t NanosBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(to - from).count();
}

// " (why the host's last connection failed)" for a call's error message, or "" if nothing failed.
std::string LastErrorOf(const UpstreamHost* host, bool name_host) {
  if (host == nullptr || host->last_error.empty()) return "";
  return name_host ? " (last error from " + host->host_port + ": " + host->last_error + ")"
                   : " (" + host->last_error + ")";
}

}  // namespace

ProxyStream::ProxyStream(DownstreamSession* downstream, int32_t id)
    : downstream_(downstream),
      downstream_id_(id),
      started_(downstream->loop().now()),
      last_activity_(started_) {
  downstream_->owner().OnStreamOpened();
  downstream_->stats().downstream_streams_total.fetch_add(1, std::memory_order_relaxed);
}

ProxyStream::~ProxyStream() {
  if (deadline_timer_ != 0) downstream_->loop().CancelTimer(deadline_timer_);
  // A client that gives up at its deadline resets the stream at about the moment our own
  // grpc-timeout timer would fire, and often first: the attempt still timed out on its pod (the
  // stuck-pod signal), so it counts as a failure, not as a cancelled call.
  if (deadline_ && host_ != nullptr &&
      downstream_->loop().now() + kDeadlineSlack >= *deadline_) {
    RecordAttempt(/*failure=*/true);
  }
  DetachUpstream();
  if (cluster_ != nullptr) {
    // A call the client reset before any status counts as CANCELLED, as the client sees it.
    const int status = finished_ ? final_status_ : 1 /*CANCELLED*/;
    cluster_->service().metrics.Record(
        status, NanosBetween(started_, downstream_->loop().now()));
    cluster_->StreamDetached();
  }
  downstream_->owner().OnStreamClosed();
}

bool ProxyStream::AddRequestHeader(std::string_view name, std::string_view value, size_t limit) {
  request_header_bytes_ += name.size() + value.size() + 32;  // RFC 9113 §6.5.2 accounting
  if (request_header_bytes_ > limit) return false;
  if (name == ":authority") {
    authority_ = value;
  } else if (name == "host" && authority_.empty()) {
    authority_ = value;
  } else if (name == "grpc-timeout") {
    if (auto timeout = ParseGrpcTimeout(value)) {
      EventLoop& loop = downstream_->loop();
      if (deadline_timer_ != 0) loop.CancelTimer(deadline_timer_);
      deadline_timer_ = loop.AddTimer(*timeout, [this] { OnDeadline(); });
      deadline_ = loop.now() + *timeout;
    }
  }
  request_headers_.Add(name, value);
  return true;
}

void ProxyStream::OnRequestHeadersDone(bool end_stream) {
  request_ended_ = end_stream;
  if (finished_) return;  // the deadline may already have passed
  std::string error;
  cluster_ = downstream_->Route(authority_, &error);
  if (cluster_ != nullptr) {
    cluster_->StreamAttached();
    cluster_->service().retry_budget.OnCall(cluster_->NowNanos());
  }
  if (cluster_ == nullptr || !Dispatch(&error)) Fail(kGrpcUnavailable, error);
}

bool ProxyStream::Dispatch(std::string* error) {
  int max_attempts = downstream_->options().max_attempts;
  while (attempts_ < max_attempts) {
    ++attempts_;
    UpstreamHost* host = cluster_->Pick(request_headers_, failed_host_, error);
    if (host == nullptr) return false;
    UpstreamSession* session = cluster_->SessionFor(host);
    if (session == nullptr) {
      *error = "cannot connect to " + host->host_port + " for " + cluster_->key().ToString();
      failed_host_ = host;
      continue;
    }
    host_ = host;
    cluster_->AttemptStarted(host);
    attempt_started_ = downstream_->loop().now();
    headers_latency_nanos_ = -1;
    attempt_recorded_ = false;
    host->stats->requests.fetch_add(1, std::memory_order_relaxed);
    host->stats->active_streams.fetch_add(1, std::memory_order_relaxed);
    upstream_ = session;
    request_sent_ = request_base_;
    request_headers_sent_ = false;
    upstream_id_ = session->Submit(this);
    if (upstream_id_ < 0) {
      DetachUpstream();
      failed_host_ = host;
      *error = "no stream available on " + host->host_port;
      continue;
    }
    return true;
  }
  if (error->empty()) *error = "gave up after " + std::to_string(max_attempts) + " attempts";
  return false;
}

void ProxyStream::OnRequestHeadersSent() {
  // The pod's latency runs from here: the time to open a connection (TCP, TLS) before the
  // first call on it is the path's, not the pod's answer time, and counted against it a new
  // pod's first call could look "clearly slower" and keep it from calls for seconds.
  if (!request_headers_sent_) attempt_started_ = downstream_->loop().now();
  request_headers_sent_ = true;
}

void ProxyStream::DetachUpstream() {
  if (upstream_ != nullptr) {
    upstream_->Cancel(upstream_id_);
    upstream_ = nullptr;
    upstream_id_ = -1;
  }
  if (host_ != nullptr) {
    // An attempt that ended without an outcome (the client cancelled, the stream was refused
    // and retried) still leaves the endpoint's calls in flight.
    if (!attempt_recorded_) cluster_->AttemptAbandoned(host_);
    host_->stats->active_streams.fetch_sub(1, std::memory_order_relaxed);
    host_ = nullptr;
  }
}

void ProxyStream::RecordAttempt(bool failure) {
  if (host_ == nullptr || attempt_recorded_) return;
  attempt_recorded_ = true;
  // Latency to the response headers, as linkerd2-proxy measures it: the end of a long stream
  // says nothing about the pod. A call that got no headers counts until it failed.
  const int64_t latency =
      headers_latency_nanos_ >= 0
          ? headers_latency_nanos_
          : NanosBetween(attempt_started_, downstream_->loop().now());
  cluster_->AttemptFinished(host_, failure, latency);
}

bool ProxyStream::RetryUnavailable() {
  // Only while the client has seen nothing and the whole request is still buffered.
  if (response_submitted_ || !retryable_ || request_base_ != 0) return false;
  if (unavailable_retries_ >= static_cast<int>(cluster_->policy().retries_on_unavailable))
    return false;
  ServiceBalancing& service = cluster_->service();
  if (!service.retry_budget.TryRetry(cluster_->NowNanos())) return false;
  ++unavailable_retries_;
  service.retries_unavailable.fetch_add(1, std::memory_order_relaxed);
  UpstreamHost* host = host_;
  if (host != nullptr) host->stats->retries.fetch_add(1, std::memory_order_relaxed);
  RecordAttempt(/*failure=*/true);
  DetachUpstream();
  failed_host_ = host;
  response_headers_.Clear();
  response_headers_received_ = false;
  attempts_ = 0;  // a fresh set of connection attempts for the new endpoint
  std::string error;
  if (!Dispatch(&error)) {
    Fail(kGrpcUnavailable, "podlb proxy: retry after UNAVAILABLE found no endpoint: " + error);
  }
  return true;
}

void ProxyStream::OnRequestData(const uint8_t* data, size_t len) {
  if (finished_ && upstream_ == nullptr) {
    // Nobody will read it: hand the window straight back.
    downstream_->ConsumeRequest(downstream_id_, len);
    return;
  }
  request_body_.Append(data, len);
  if (upstream_ != nullptr) upstream_->ResumeData(upstream_id_);
}

void ProxyStream::OnRequestEnd() {
  request_ended_ = true;
  if (upstream_ != nullptr) upstream_->ResumeData(upstream_id_);
}

void ProxyStream::DropSentRequestBytes() {
  request_body_.Pop(request_sent_ - request_base_);
  request_base_ = request_sent_;
}

ssize_t ProxyStream::ReadRequest(uint8_t* buf, size_t len, uint32_t* flags) {
  size_t offset = request_sent_ - request_base_;
  size_t available = request_body_.size() - offset;
  size_t n = std::min(len, available);
  if (n > 0) {
    std::memcpy(buf, request_body_.data() + offset, n);
    request_sent_ += n;
    if (request_sent_ > request_consumed_) {
      downstream_->ConsumeRequest(downstream_id_, request_sent_ - request_consumed_);
      request_consumed_ = request_sent_;
    }
    if (!retryable_ || request_sent_ - request_base_ > kRetryBufferLimit) {
      retryable_ = false;
      DropSentRequestBytes();
    }
  }
  if (n == available && request_ended_) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    return n;
  }
  if (n == 0) return NGHTTP2_ERR_DEFERRED;
  return n;
}

void ProxyStream::AddResponseHeader(bool trailer, std::string_view name, std::string_view value) {
  (trailer ? response_trailers_ : response_headers_).Add(name, value);
}

void ProxyStream::OnResponseHeadersDone(bool end_stream) {
  last_activity_ = downstream_->loop().now();
  response_headers_received_ = true;
  if (headers_latency_nanos_ < 0) headers_latency_nanos_ = NanosBetween(attempt_started_, last_activity_);
  if (end_stream && !finished_) {  // trailers-only response: the status is here
    const int status = GrpcStatusOf(response_headers_);
    if (status == kGrpcUnavailable && RetryUnavailable()) return;
    RecordAttempt(balancing::IsEndpointFailure(status));
    final_status_ = status;
  }
  retryable_ = false;
  DropSentRequestBytes();
  if (finished_) return;
  if (end_stream) {
    response_ended_ = true;
    finished_ = true;
  }
  response_submitted_ = true;
  downstream_->SubmitResponse(downstream_id_, response_headers_, !end_stream);
}

void ProxyStream::OnResponseData(const uint8_t* data, size_t len) {
  if (local_reply_) {
    if (upstream_ != nullptr) upstream_->Consume(upstream_id_, len);
    return;
  }
  last_activity_ = downstream_->loop().now();
  response_body_.Append(data, len);
  ResumeDownstream();
}

void ProxyStream::OnResponseEnd() {
  if (local_reply_) return;
  const int status = GrpcStatusOf(response_trailers_);
  RecordAttempt(balancing::IsEndpointFailure(status));
  final_status_ = status;
  response_ended_ = true;
  finished_ = true;
  ResumeDownstream();
}

void ProxyStream::ResumeDownstream() {
  if (response_submitted_) downstream_->ResumeData(downstream_id_);
}

ssize_t ProxyStream::ReadResponse(uint8_t* buf, size_t len, uint32_t* flags) {
  size_t n = std::min(len, response_body_.size());
  if (n > 0) {
    std::memcpy(buf, response_body_.data(), n);
    response_body_.Pop(n);
    if (upstream_ != nullptr) upstream_->Consume(upstream_id_, n);
  }
  if (response_body_.empty() && response_ended_) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!response_trailers_.empty()) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      downstream_->SubmitTrailers(downstream_id_, response_trailers_);
    }
    return n;
  }
  if (n == 0) return NGHTTP2_ERR_DEFERRED;
  return n;
}

void ProxyStream::OnUpstreamClosed(uint32_t error_code, bool connection_lost,
                                   bool never_connected) {
  UpstreamHost* host = host_;
  upstream_ = nullptr;  // the session already forgot the stream
  upstream_id_ = -1;
  const bool refused =
      error_code == NGHTTP2_REFUSED_STREAM || never_connected || !request_headers_sent_;
  // A stream the endpoint never processed says nothing about its calls (a failed connection
  // was reported as such); one lost or reset mid-call is the endpoint's failure.
  if (!(response_ended_ || local_reply_) && !refused) RecordAttempt(/*failure=*/true);
  DetachUpstream();
  if (response_ended_ || local_reply_) return;
  if (!response_headers_received_ && refused && retryable_ && request_base_ == 0) {
    if (host != nullptr) host->stats->retries.fetch_add(1, std::memory_order_relaxed);
    if (cluster_ != nullptr)
      cluster_->service().retries_refused.fetch_add(1, std::memory_order_relaxed);
    failed_host_ = host;
    std::string error;
    if (Dispatch(&error)) return;
    Fail(kGrpcUnavailable,
         "podlb proxy: stream refused and not retried: " + error + LastErrorOf(host, true));
    return;
  }
  std::string where = host != nullptr ? host->host_port : std::string("upstream");
  if (connection_lost) {
    Fail(kGrpcUnavailable,
         "podlb proxy: connection to " + where + " lost mid-call" + LastErrorOf(host, false));
  } else {
    Fail(kGrpcUnavailable, "podlb proxy: " + where + " reset the stream (HTTP/2 error " +
                               std::to_string(error_code) + ")");
  }
}

void ProxyStream::OnDeadline() {
  deadline_timer_ = 0;
  if (finished_) return;
  downstream_->stats().deadline_exceeded_total.fetch_add(1, std::memory_order_relaxed);
  RecordAttempt(/*failure=*/true);  // a pod that does not answer in time: the stuck-pod signal
  Fail(kGrpcDeadlineExceeded, "deadline exceeded (grpc-timeout) at podlb proxy");
}

void ProxyStream::Fail(int grpc_status, const std::string& message) {
  DetachUpstream();
  if (finished_) return;
  finished_ = true;
  final_status_ = grpc_status;
  local_reply_ = true;
  downstream_->stats().local_replies_total.fetch_add(1, std::memory_order_relaxed);
  const std::string code = std::to_string(grpc_status);
  const std::string encoded = PercentEncode(message);
  if (!response_submitted_) {
    HeaderBlock headers{{":status", "200"},
                        {"content-type", "application/grpc"},
                        {"grpc-status", code},
                        {"grpc-message", encoded}};
    response_submitted_ = true;
    response_ended_ = true;
    downstream_->SubmitResponse(downstream_id_, headers, false);
    return;
  }
  // Headers (and maybe data) already went out: finish with trailers after what is queued.
  response_trailers_.Clear();  // the upstream's trailers, if any, are replaced by ours
  response_trailers_.Add("grpc-status", code);
  response_trailers_.Add("grpc-message", encoded);
  response_ended_ = true;
  ResumeDownstream();
}

}  // namespace podlb::proxy
