#include "xds/ads_connection.h"

#include <sys/epoll.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/logging.h"
#include "h2/grpc_util.h"
#include "xds/ads_service.h"

namespace podlb::xds {
namespace {

constexpr std::string_view kAdsPath =
    "/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources";
constexpr size_t kGrpcPrefix = 5;  // compressed flag + big-endian length

nghttp2_nv Header(std::string_view name, std::string_view value) {
  return {reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
          reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(), value.size(),
          NGHTTP2_NV_FLAG_NONE};
}

}  // namespace

// One gRPC call on the connection. Its AdsStream tells it when a response may be due.
struct AdsConnection::Call final : public AdsStreamSink {
  Call(AdsConnection* connection, int32_t id) : connection(connection), id(id) {}
  void OnResponseDue() override { connection->Resume(*this); }

  AdsConnection* const connection;
  const int32_t id;
  // Request headers.
  std::string method;
  std::string path;
  std::string content_type;
  size_t header_bytes = 0;
  // Set once the call is an ADS stream (response headers sent, body provider attached).
  std::shared_ptr<AdsStream> stream;
  std::string input;  // request bytes not yet a whole message
  // The response being copied into DATA frames: the gRPC prefix (segment 0), the response's
  // header fields (1), then the shared resource bytes (2..n+1). Its buffers are reused.
  bool sending = false;
  char prefix[kGrpcPrefix];
  AdsResponse response;
  size_t segment = 0;
  size_t offset = 0;
  // Ending: trailers with this status once nothing is left to send.
  bool finishing = false;
  bool send_due = false;  // ...counting the responses due when it began to end
  int status = h2::kGrpcOk;
  std::string message;
  std::string encoded_message;  // grpc-message, alive until nghttp2 copied the trailers
};

AdsConnection::AdsConnection(h2::EventLoop& loop, AdsService& service, AdsConnectionOwner& owner,
                             const AdsConnectionLimits& limits, int fd, SSL* ssl,
                             std::string peer)
    : H2Connection(loop),
      service_(service),
      owner_(owner),
      limits_(limits),
      peer_(std::move(peer)) {
  AdoptServerSocket(fd, ssl);
  nghttp2_option* option;
  nghttp2_option_new(&option);
  // nghttp2's own limits are backstops behind ours (OnControlFrame), which answer with
  // ENHANCE_YOUR_CALM before nghttp2 drops the connection.
  nghttp2_option_set_max_outbound_ack(option, 10 * limits.max_control_frames_per_second + 1000);
  nghttp2_option_set_max_settings(option, 32);
  nghttp2_option_set_stream_reset_rate_limit(option, 10 * limits.max_resets_per_second + 1000,
                                             2 * limits.max_resets_per_second);
  nghttp2_option_set_no_closed_streams(option, 1);
  NewSession(Role::kServer, option);
  nghttp2_option_del(option);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits.max_header_list_bytes},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 4);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, 4 << 20);
  if (fd_ >= 0) loop_.Add(fd_, EPOLLIN, this);
  // Cancelled by the first input (OnIo); a connection that sends nothing is closed.
  handshake_timer_ = loop_.AddTimer(limits.handshake_timeout, [this] {
    handshake_timer_ = 0;
    LogDebug("xds: {} sent nothing within the handshake timeout; closing", peer_);
    Close();
  });
  // The server preface (SETTINGS) goes out right away; TLS waits for its handshake.
  if (tls_handshake_done_) loop_.ScheduleFlush(this);
}

AdsConnection::~AdsConnection() {
  owner_gone_ = true;
  Close();
  DeleteSession();
}

void AdsConnection::Shutdown() {
  if (closed_ || shutting_down_) return;
  shutting_down_ = true;
  for (auto& [id, call] : calls_) {
    if (call->stream) {
      FinishCall(*call, h2::kGrpcUnavailable, "podlb control plane is shutting down");
    }
  }
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  loop_.ScheduleFlush(this);
}

bool AdsConnection::OnInput(const uint8_t* data, size_t len) {
  if (closed_) return false;
  // Small slices, so that once a flood was detected the rest of the input is not processed.
  constexpr size_t kSlice = 16 * 1024;
  for (size_t offset = 0; offset < len && !calmed_; offset += kSlice) {
    ssize_t rv = nghttp2_session_mem_recv(session_, data + offset, std::min(kSlice, len - offset));
    if (rv < 0) {
      LogDebug("xds: {}: HTTP/2 error: {}", peer_, nghttp2_strerror(static_cast<int>(rv)));
      return false;
    }
  }
  loop_.ScheduleFlush(this);
  return true;
}

void AdsConnection::OnIo(uint32_t events) {
  if (closed_) return;
  if (handshake_timer_ != 0 && (events & EPOLLIN)) {
    // Input (a TLS hello or the HTTP/2 preface, or bytes that are neither): not silent.
    loop_.CancelTimer(handshake_timer_);
    handshake_timer_ = 0;
  }
  std::string handshake_failure;
  if (!ServeReadable(events, &handshake_failure)) {
    if (!handshake_failure.empty()) owner_.OnTlsHandshakeFailed(peer_, handshake_failure);
    Close();
    return;
  }
  if (!closed_) Flush();
}

void AdsConnection::Flush() {
  if (closed_ || !tls_handshake_done_) return;
  std::string error;
  if (!WriteOutput(&error)) {
    LogDebug("xds: {}: {}", peer_, error);
    Close();
    return;
  }
  if (out_.empty() && !nghttp2_session_want_read(session_) &&
      !nghttp2_session_want_write(session_)) {
    Close();
    return;
  }
  UpdateEvents();
}

void AdsConnection::Close() {
  if (closed_) return;
  closed_ = true;
  if (handshake_timer_ != 0) loop_.CancelTimer(handshake_timer_);
  handshake_timer_ = 0;
  for (auto& [id, call] : calls_) EndStream(*call);
  calls_.clear();
  const bool had_socket = fd_ >= 0;
  CloseSocket();
  if (had_socket && !owner_gone_) owner_.OnConnectionClosed(this);
}

int AdsConnection::OnBeginHeaders(const nghttp2_frame& frame) {
  if (frame.hd.type != NGHTTP2_HEADERS || frame.headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto call = std::make_unique<Call>(this, frame.hd.stream_id);
  nghttp2_session_set_stream_user_data(session_, frame.hd.stream_id, call.get());
  calls_[frame.hd.stream_id] = std::move(call);
  return 0;
}

int AdsConnection::OnHeader(void* stream, bool first_block, std::string_view name,
                            std::string_view value) {
  if (!first_block) return 0;  // request trailers: gRPC clients send none
  Call& call = *AsCall(stream);
  call.header_bytes += name.size() + value.size() + 32;
  if (call.header_bytes > limits_.max_header_list_bytes) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  if (name == ":method") {
    call.method = value;
  } else if (name == ":path") {
    call.path = value;
  } else if (name == "content-type") {
    call.content_type = value;
  }
  return 0;
}

void AdsConnection::OnHeadersEnd(void* stream, bool first_block, bool end_stream) {
  Call& call = *AsCall(stream);
  if (first_block) StartCall(call);
  // The client half-closed: an ADS stream it stops sending on is over (gRPC clients cancel
  // rather than half-close, but a client may do either).
  if (end_stream && call.stream) FinishCall(call, h2::kGrpcOk, "", /*send_due=*/true);
}

void AdsConnection::OnDataEnd(void* stream) {
  Call& call = *AsCall(stream);
  if (call.stream) FinishCall(call, h2::kGrpcOk, "", /*send_due=*/true);
}

void AdsConnection::CalmDown(const char* why) {
  if (calmed_) return;
  LogInfo("xds: closing the connection of {} with ENHANCE_YOUR_CALM: {}", peer_, why);
  calmed_ = true;
  nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
  loop_.ScheduleFlush(this);
}

void AdsConnection::OnControlFrame(const nghttp2_frame& frame) {
  if (const char* flood = CountFlood(frame, {limits_.max_resets_per_second,
                                             limits_.max_control_frames_per_second}))
    CalmDown(flood);
}

void AdsConnection::StartCall(Call& call) {
  auto answer_only = [&](std::string_view http_status, int grpc_status, std::string message) {
    std::string status_text = std::to_string(grpc_status);
    std::string encoded = h2::PercentEncode(message);
    std::vector<nghttp2_nv> nv = {Header(":status", http_status),
                                  Header("content-type", "application/grpc")};
    if (http_status == "200") {
      nv.push_back(Header("grpc-status", status_text));
      nv.push_back(Header("grpc-message", encoded));
    }
    nghttp2_submit_response(session_, call.id, nv.data(), nv.size(), nullptr);
    loop_.ScheduleFlush(this);
  };
  if (call.method != "POST") {
    answer_only("405", 0, "");
    return;
  }
  if (call.content_type.rfind("application/grpc", 0) != 0) {
    answer_only("415", 0, "");
    return;
  }
  if (call.path != kAdsPath) {
    // DeltaAggregatedResources among them: clients fall back to state of the world.
    answer_only("200", h2::kGrpcUnimplemented, "podlb serves " + std::string(kAdsPath) +
                                                   " only (state of the world); not " + call.path);
    return;
  }
  if (shutting_down_) {
    answer_only("200", h2::kGrpcUnavailable, "podlb control plane is shutting down");
    return;
  }
  nghttp2_nv nv[] = {Header(":status", "200"), Header("content-type", "application/grpc"),
                     Header("grpc-accept-encoding", "identity")};
  nghttp2_data_provider provider = BodyProvider();
  nghttp2_submit_response(session_, call.id, nv, 3, &provider);
  call.stream = service_.OpenStream(peer_, &loop_);
  call.stream->Attach(&call);
  loop_.ScheduleFlush(this);
}

void AdsConnection::OnStreamData(void* stream, int32_t, const uint8_t* data, size_t len) {
  Call& call = *AsCall(stream);
  if (!call.stream || call.finishing) return;
  call.input.append(reinterpret_cast<const char*>(data), len);
  DeliverRequests(call);
}

void AdsConnection::DeliverRequests(Call& call) {
  size_t consumed = 0;
  while (!call.finishing && call.input.size() - consumed >= kGrpcPrefix) {
    const auto* p = reinterpret_cast<const uint8_t*>(call.input.data()) + consumed;
    uint32_t length = (uint32_t{p[1]} << 24) | (uint32_t{p[2]} << 16) | (uint32_t{p[3]} << 8) | p[4];
    if (length > limits_.max_request_bytes) {
      FinishCall(call, h2::kGrpcResourceExhausted,
                 "podlb: request of " + std::to_string(length) + " bytes is over the limit of " +
                     std::to_string(limits_.max_request_bytes));
      break;
    }
    if (call.input.size() - consumed < kGrpcPrefix + length) break;
    if (p[0] != 0) {
      FinishCall(call, h2::kGrpcUnimplemented,
                 "podlb: compressed requests are not supported (grpc-accept-encoding: identity)");
      break;
    }
    absl::Status status = call.stream->OnRequest(
        std::string_view(reinterpret_cast<const char*>(p) + kGrpcPrefix, length));
    consumed += kGrpcPrefix + length;
    if (!status.ok()) FinishCall(call, h2::kGrpcInvalidArgument, std::string(status.message()));
  }
  if (call.finishing) {
    call.input.clear();
  } else {
    call.input.erase(0, consumed);
  }
}

void AdsConnection::FinishCall(Call& call, int status, std::string message, bool send_due) {
  if (call.finishing) return;
  call.finishing = true;
  call.send_due = send_due;
  call.status = status;
  call.message = std::move(message);
  Resume(call);
}

void AdsConnection::Resume(Call& call) {
  if (closed_ || !call.stream) return;
  nghttp2_session_resume_data(session_, call.id);
  loop_.ScheduleFlush(this);
}

ssize_t AdsConnection::ReadBody(void* stream, uint8_t* buf, size_t len, uint32_t* flags) {
  Call& call = *AsCall(stream);
  size_t n = 0;
  while (n < len) {
    if (!call.sending) {
      if ((call.finishing && !call.send_due) || !call.stream->TakeResponse(&call.response)) break;
      const size_t size = call.response.size();
      call.prefix[0] = 0;
      call.prefix[1] = static_cast<char>(size >> 24);
      call.prefix[2] = static_cast<char>(size >> 16);
      call.prefix[3] = static_cast<char>(size >> 8);
      call.prefix[4] = static_cast<char>(size);
      call.segment = 0;
      call.offset = 0;
      call.sending = true;
    }
    const std::vector<EncodedResourceConstSharedPtr>& resources = call.response.resources;
    std::string_view segment = call.segment == 0   ? std::string_view(call.prefix, kGrpcPrefix)
                               : call.segment == 1 ? std::string_view(call.response.header)
                                                   : resources[call.segment - 2]->response_field;
    const size_t take = std::min(len - n, segment.size() - call.offset);
    memcpy(buf + n, segment.data() + call.offset, take);
    n += take;
    call.offset += take;
    if (call.offset == segment.size()) {
      ++call.segment;
      call.offset = 0;
      if (call.segment > resources.size() + 1) {
        call.sending = false;
        call.response.resources.clear();  // the cache's entries are not held past their response
      }
    }
  }
  if (n > 0) return static_cast<ssize_t>(n);
  if (!call.finishing) return NGHTTP2_ERR_DEFERRED;
  call.send_due = false;  // what was due went; a change from now on is not sent
  *flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
  std::string status_text = std::to_string(call.status);
  call.encoded_message = h2::PercentEncode(call.message);
  std::vector<nghttp2_nv> trailers = {Header("grpc-status", status_text)};
  if (!call.encoded_message.empty()) trailers.push_back(Header("grpc-message", call.encoded_message));
  nghttp2_submit_trailer(session_, call.id, trailers.data(), trailers.size());
  return 0;
}

void AdsConnection::EndStream(Call& call) {
  if (!call.stream) return;
  call.stream->Detach();
  call.stream->OnClosed();
  service_.CloseStream(call.stream->id());
}

void AdsConnection::OnStreamClose(void*, int32_t stream_id, uint32_t) {
  auto it = calls_.find(stream_id);
  if (it == calls_.end()) return;
  EndStream(*it->second);
  calls_.erase(it);
}

}  // namespace podlb::xds
