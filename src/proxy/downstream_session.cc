#include "proxy/downstream_session.h"

#include <errno.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "core/logging.h"
#include "proxy/nv_array.h"

namespace podlb::proxy {

DownstreamSession::DownstreamSession(const DownstreamContext& context, int fd,
                                     const ListenerConfig* listener, SSL* ssl)
    : H2Connection(context.loop),
      context_(context),
      listener_(listener),
      created_(context.loop.now()),
      last_activity_(created_) {
  AdoptServerSocket(fd, ssl);
  const ProxyOptions& o = context.options;
  nghttp2_option* option;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_auto_window_update(option, 1);
  // Our own SETTINGS/PING counter (which answers with GOAWAY) must trip before nghttp2's queue
  // limit (which only drops the connection).
  nghttp2_option_set_max_outbound_ack(option, 10 * o.max_control_frames_per_second + 1000);
  nghttp2_option_set_max_settings(option, 32);
  nghttp2_option_set_stream_reset_rate_limit(option, 2ULL * o.max_resets_per_second,
                                             o.max_resets_per_second);
  // gRPC does not use stream priorities; without them nghttp2 keeps no dependency tree and no
  // closed streams for it, which was a large part of its per-stream cost.
  nghttp2_option_set_no_closed_streams(option, 1);
  NewSession(Role::kServer, option);
  nghttp2_option_del(option);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, o.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, o.stream_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, o.max_header_list_bytes},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 4);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(o.connection_window));
  stats().downstream_connections_total.fetch_add(1, std::memory_order_relaxed);
  stats().downstream_connections_active.fetch_add(1, std::memory_order_relaxed);
  if (fd_ >= 0) loop_.Add(fd_, EPOLLIN, this);
  // The server preface (SETTINGS) goes out right away; TLS waits for its handshake.
  if (tls_handshake_done_) loop_.ScheduleFlush(this);
}

DownstreamSession::~DownstreamSession() {
  owner_gone_ = true;  // the worker is destroying us: do not call back into its map
  Close();
  streams_.clear();
  DeleteSession();
  stats().downstream_connections_active.fetch_sub(1, std::memory_order_relaxed);
}

Cluster* DownstreamSession::Route(std::string_view authority, std::string* error) {
  if (listener_ != nullptr && listener_->service) return owner().ClusterForKey(*listener_->service);
  return owner().ClusterForAuthority(authority, error);
}

bool DownstreamSession::Receive(const uint8_t* data, size_t len) {
  if (closed_) return false;
  got_preface_ = true;
  last_activity_ = loop_.now();
  // Small slices, so that once a flood was detected the rest of the buffer is not processed.
  constexpr size_t kSlice = 16 * 1024;
  for (size_t offset = 0; offset < len && !calmed_; offset += kSlice) {
    ssize_t rv = nghttp2_session_mem_recv(session_, data + offset, std::min(kSlice, len - offset));
    if (rv < 0) {
      LogDebug("proxy: downstream HTTP/2 error: {}", nghttp2_strerror(static_cast<int>(rv)));
      return false;
    }
  }
  loop_.ScheduleFlush(this);
  return true;
}

void DownstreamSession::SubmitResponse(int32_t stream_id, const HeaderBlock& headers,
                                       bool with_body) {
  NvArray nv(headers);
  nghttp2_data_provider provider = BodyProvider();
  nghttp2_submit_response(session_, stream_id, nv.data(), nv.size(),
                          with_body ? &provider : nullptr);
  loop_.ScheduleFlush(this);
}

void DownstreamSession::SubmitTrailers(int32_t stream_id, const HeaderBlock& trailers) {
  NvArray nv(trailers);
  nghttp2_submit_trailer(session_, stream_id, nv.data(), nv.size());
}

void DownstreamSession::ResumeData(int32_t stream_id) {
  nghttp2_session_resume_data(session_, stream_id);
  loop_.ScheduleFlush(this);
}

void DownstreamSession::ConsumeRequest(int32_t stream_id, size_t n) {
  nghttp2_session_consume_stream(session_, stream_id, n);
  loop_.ScheduleFlush(this);
}

void DownstreamSession::ResetStream(int32_t stream_id, uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code);
  loop_.ScheduleFlush(this);
}

void DownstreamSession::SendShutdownNotice() {
  nghttp2_submit_shutdown_notice(session_);
  loop_.ScheduleFlush(this);
}

void DownstreamSession::SendFinalGoaway() {
  if (final_goaway_sent_) return;
  final_goaway_sent_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  loop_.ScheduleFlush(this);
}

void DownstreamSession::CheckTimeouts(Clock::time_point now) {
  if (lingering_) return;
  const ProxyOptions& o = options();
  if (!got_preface_ && now - created_ > o.handshake_timeout) {
    stats().idle_closes_total.fetch_add(1, std::memory_order_relaxed);
    Close();
    return;
  }
  if (streams_.empty() && now - last_activity_ > o.idle_timeout) {
    stats().idle_closes_total.fetch_add(1, std::memory_order_relaxed);
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
    loop_.ScheduleFlush(this);
    return;
  }
  std::vector<ProxyStream*> idle;
  for (auto& [id, stream] : streams_)
    if (now - stream->last_activity() > o.stream_idle_timeout) idle.push_back(stream.get());
  for (ProxyStream* stream : idle) {
    if (stream->finished()) {
      ResetStream(stream->downstream_id(), NGHTTP2_CANCEL);
    } else {
      stream->Fail(14, "stream idle for longer than the proxy's stream idle timeout");
    }
    stream->Touch(now);
  }
}

void DownstreamSession::CalmDown(const char* why) {
  stats().flood_goaways_total.fetch_add(1, std::memory_order_relaxed);
  LogInfo("proxy: closing a downstream connection with ENHANCE_YOUR_CALM: {}", why);
  calmed_ = true;
  nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
  loop_.ScheduleFlush(this);
}

void DownstreamSession::OnIo(uint32_t events) {
  if (closed_) return;
  if (lingering_) {
    uint8_t buf[16 * 1024];
    ssize_t n = read(fd_, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) Close();
    return;
  }
  std::string handshake_failure;
  if (!ServeReadable(events, &handshake_failure)) {
    if (!handshake_failure.empty())
      LogDebug("proxy: TLS handshake with a client failed: {}", handshake_failure);
    Close();
    return;
  }
  if (!closed_) Flush();
}

void DownstreamSession::Flush() {
  if (closed_ || lingering_ || !tls_handshake_done_) return;
  std::string error;
  if (!WriteOutput(&error)) {
    LogDebug("proxy: downstream connection: {}", error);
    Close();
    return;
  }
  if (out_.empty() &&
      ((!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) ||
       (final_goaway_sent_ && streams_.empty()))) {
    Linger();
    return;
  }
  UpdateEvents();
}

void DownstreamSession::Linger() {
  // Closing with unread input would send a TCP RST, and the peer could lose our GOAWAY with it:
  // half-close, discard what still arrives, and close on EOF or after a second.
  if (fd_ < 0 || ssl_ != nullptr) {
    Close();
    return;
  }
  lingering_ = true;
  streams_.clear();
  shutdown(fd_, SHUT_WR);
  SetWantOut(false);
  linger_timer_ = loop_.AddTimer(std::chrono::seconds(1), [this] {
    linger_timer_ = 0;
    Close();
  });
}

void DownstreamSession::Close() {
  if (closed_) return;
  closed_ = true;
  if (linger_timer_ != 0) loop_.CancelTimer(linger_timer_);
  // Streams go first: they cancel their upstream halves.
  streams_.clear();
  const bool had_socket = fd_ >= 0;
  CloseSocket();
  if (had_socket && !owner_gone_) owner().OnDownstreamClosed(this);
}

int DownstreamSession::OnBeginHeaders(const nghttp2_frame& frame) {
  if (frame.hd.type != NGHTTP2_HEADERS || frame.headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto stream = std::make_unique<ProxyStream>(this, frame.hd.stream_id);
  nghttp2_session_set_stream_user_data(session_, frame.hd.stream_id, stream.get());
  streams_[frame.hd.stream_id] = std::move(stream);
  return 0;
}

int DownstreamSession::OnHeader(void* stream, bool first_block, std::string_view name,
                                std::string_view value) {
  if (!first_block) return 0;  // request trailers: gRPC sends none; they are dropped
  if (!AsStream(stream)->AddRequestHeader(name, value, options().max_header_list_bytes)) {
    stats().header_limit_resets_total.fetch_add(1, std::memory_order_relaxed);
    // nghttp2 resets the stream (and keeps decoding the block so HPACK state stays right).
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  return 0;
}

void DownstreamSession::OnHeadersEnd(void* stream, bool first_block, bool end_stream) {
  if (first_block) {
    AsStream(stream)->OnRequestHeadersDone(end_stream);
  } else if (end_stream) {
    AsStream(stream)->OnRequestEnd();
  }
}

void DownstreamSession::OnDataEnd(void* stream) { AsStream(stream)->OnRequestEnd(); }

void DownstreamSession::OnStreamData(void* stream, int32_t, const uint8_t* data, size_t len) {
  // The stream window reopens only once the bytes went upstream (ConsumeRequest).
  AsStream(stream)->Touch(loop_.now());
  AsStream(stream)->OnRequestData(data, len);
}

void DownstreamSession::OnControlFrame(const nghttp2_frame& frame) {
  const ProxyOptions& o = options();
  if (const char* flood = CountFlood(frame, {o.max_resets_per_second, o.max_control_frames_per_second}))
    CalmDown(flood);
}

void DownstreamSession::OnStreamClose(void*, int32_t stream_id, uint32_t) {
  streams_.erase(stream_id);
}

ssize_t DownstreamSession::ReadBody(void* stream, uint8_t* buf, size_t len, uint32_t* flags) {
  return AsStream(stream)->ReadResponse(buf, len, flags);
}

}  // namespace podlb::proxy
