// ProxyStream: one gRPC call crossing the proxy — a downstream HTTP/2 stream tied to (at most)
// one upstream stream at a time. It routes and balances the call, relays headers, bodies and
// trailers both ways with end-to-end flow control (bytes are consumed on one side only once the
// other side took them), retries on another endpoint while nothing was sent downstream (a
// refused stream always; an UNAVAILABLE answer when the Service asks for it and its retry budget
// allows), enforces grpc-timeout, turns upstream failures into a gRPC status, and reports each
// attempt's latency and outcome to the balancing core.
// Owned by its DownstreamSession; worker thread only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "proxy/byte_queue.h"
#include "h2/event_loop.h"
#include "proxy/upstream_stream.h"

namespace podlb::proxy {

using h2::EventLoop;
using h2::Clock;

class Cluster;
class DownstreamSession;
class UpstreamSession;
struct UpstreamHost;

class ProxyStream final : public UpstreamStreamHandler {
 public:
  ProxyStream(DownstreamSession* downstream, int32_t id);
  ~ProxyStream() override;

  int32_t downstream_id() const { return downstream_id_; }
  Clock::time_point last_activity() const { return last_activity_; }

  // Downstream events (DownstreamSession callbacks).
  // Returns false when the header list outgrew the limit.
  bool AddRequestHeader(std::string_view name, std::string_view value, size_t limit);
  void OnRequestHeadersDone(bool end_stream);
  void OnRequestData(const uint8_t* data, size_t len);
  void OnRequestEnd();
  ssize_t ReadResponse(uint8_t* buf, size_t len, uint32_t* flags);

  // Upstream events (UpstreamSession callbacks).
  void AddResponseHeader(bool trailer, std::string_view name, std::string_view value) override;
  void OnResponseHeadersDone(bool end_stream) override;
  void OnResponseData(const uint8_t* data, size_t len) override;
  void OnResponseEnd() override;
  void OnRequestHeadersSent() override;
  void OnUpstreamClosed(uint32_t error_code, bool connection_lost, bool never_connected) override;
  ssize_t ReadRequest(uint8_t* buf, size_t len, uint32_t* flags) override;
  const HeaderBlock& request_headers() const override { return request_headers_; }

  // Ends the call with a gRPC status from the proxy (trailers-only if nothing was sent yet) and
  // cancels the upstream stream, if any.
  void Fail(int grpc_status, const std::string& message);
  bool finished() const { return finished_; }
  void Touch(Clock::time_point now) { last_activity_ = now; }

 private:
  bool Dispatch(std::string* error);
  void DetachUpstream();
  // Reports the current attempt's outcome to the balancer (once per attempt).
  void RecordAttempt(bool failure);
  // A trailers-only UNAVAILABLE that may go to another endpoint: true if it was re-dispatched
  // (or failed for good) and the response must not be relayed.
  bool RetryUnavailable();
  void OnDeadline();
  void ResumeDownstream();
  void DropSentRequestBytes();

  DownstreamSession* downstream_;
  int32_t downstream_id_;
  Cluster* cluster_ = nullptr;
  UpstreamHost* host_ = nullptr;
  UpstreamHost* failed_host_ = nullptr;
  UpstreamSession* upstream_ = nullptr;
  int32_t upstream_id_ = -1;
  int attempts_ = 0;
  int unavailable_retries_ = 0;
  Clock::time_point started_;
  Clock::time_point attempt_started_;
  int64_t headers_latency_nanos_ = -1;  // of the current attempt, once its headers came
  bool attempt_recorded_ = false;
  // The grpc-status the client gets (-1: none, the call ended without one), for the metrics.
  int final_status_ = -1;
  Clock::time_point last_activity_;
  uint64_t deadline_timer_ = 0;
  std::optional<Clock::time_point> deadline_;  // from grpc-timeout

  HeaderBlock request_headers_;
  size_t request_header_bytes_ = 0;
  std::string authority_;
  // Request body: bytes before sent_ went to the current upstream attempt. While the stream may
  // still be retried, sent bytes stay queued (up to kRetryBufferLimit) so a retry can resend them.
  ByteQueue request_body_;
  uint64_t request_base_ = 0;      // absolute offset of request_body_.data()[0]
  uint64_t request_sent_ = 0;      // absolute offset of the next byte for upstream
  uint64_t request_consumed_ = 0;  // absolute bytes whose window went back downstream
  bool request_ended_ = false;
  bool request_headers_sent_ = false;
  bool retryable_ = true;

  HeaderBlock response_headers_;
  HeaderBlock response_trailers_;
  ByteQueue response_body_;
  bool response_headers_received_ = false;
  bool response_submitted_ = false;  // HEADERS went to nghttp2 for the downstream
  bool response_ended_ = false;      // nothing more will be added to response_body_
  bool finished_ = false;            // a final status was decided (upstream or local)
  bool local_reply_ = false;         // ...and the proxy decided it
};

}  // namespace podlb::proxy
