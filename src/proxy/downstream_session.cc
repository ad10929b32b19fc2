#include "proxy/downstream_session.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

#include "core/logging.h"
#include "proxy/cluster.h"
#include "proxy/nv_array.h"
#include "proxy/tls.h"
#include "proxy/worker.h"

namespace podlb::proxy {
namespace {

constexpr size_t kOutputBatch = 64 * 1024;
constexpr int kReadsPerEvent = 4;  // fairness between connections of one worker

ProxyStream* StreamOf(nghttp2_session* session, int32_t id) {
  return static_cast<ProxyStream*>(nghttp2_session_get_stream_user_data(session, id));
}

}  // namespace

nghttp2_session_callbacks* DownstreamSession::Callbacks() {
  static nghttp2_session_callbacks* callbacks = [] {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, &DownstreamSession::OnBeginHeaders);
    nghttp2_session_callbacks_set_on_header_callback(cb, &DownstreamSession::OnHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &DownstreamSession::OnFrameRecv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &DownstreamSession::OnDataChunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &DownstreamSession::OnStreamClose);
    return cb;
  }();
  return callbacks;
}

DownstreamSession::DownstreamSession(Worker* worker, int fd, const ListenerConfig* listener,
                                     SSL* ssl)
    : worker_(worker),
      fd_(fd),
      listener_(listener),
      ssl_(ssl),
      tls_handshake_done_(ssl == nullptr),
      created_(worker->loop().now()),
      last_activity_(created_),
      flood_window_start_(created_) {
  const ProxyOptions& o = worker->options();
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
  nghttp2_session_server_new2(&session_, Callbacks(), this, option);
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
  worker->stats().downstream_connections_total.fetch_add(1, std::memory_order_relaxed);
  worker->stats().downstream_connections_active.fetch_add(1, std::memory_order_relaxed);
  if (fd_ >= 0) worker->loop().Add(fd_, EPOLLIN, this);
  // The server preface (SETTINGS) goes out right away; TLS waits for its handshake.
  if (tls_handshake_done_) worker->loop().ScheduleFlush(this);
}

DownstreamSession::~DownstreamSession() {
  owner_gone_ = true;  // the worker is destroying us: do not call back into its map
  Close();
  streams_.clear();
  nghttp2_session_del(session_);
  worker_->stats().downstream_connections_active.fetch_sub(1, std::memory_order_relaxed);
}

const ProxyOptions& DownstreamSession::options() const { return worker_->options(); }

Cluster* DownstreamSession::Route(std::string_view authority, std::string* error) {
  if (listener_ != nullptr && listener_->service)
    return worker_->ClusterForKey(*listener_->service, error);
  return worker_->ClusterForAuthority(authority, error);
}

bool DownstreamSession::Receive(const uint8_t* data, size_t len) {
  if (closed_) return false;
  got_preface_ = true;
  last_activity_ = worker_->loop().now();
  // Small slices, so that once a flood was detected the rest of the buffer is not processed.
  constexpr size_t kSlice = 16 * 1024;
  for (size_t offset = 0; offset < len && !calmed_; offset += kSlice) {
    ssize_t rv = nghttp2_session_mem_recv(session_, data + offset, std::min(kSlice, len - offset));
    if (rv < 0) {
      LogDebug("proxy: downstream HTTP/2 error: {}", nghttp2_strerror(rv));
      return false;
    }
  }
  worker_->loop().ScheduleFlush(this);
  return true;
}

void DownstreamSession::SubmitResponse(int32_t stream_id, const HeaderBlock& headers,
                                       bool with_body) {
  NvArray nv(headers);
  nghttp2_data_provider provider{};
  provider.read_callback = &DownstreamSession::ReadResponse;
  nghttp2_submit_response(session_, stream_id, nv.data(), nv.size(),
                          with_body ? &provider : nullptr);
  worker_->loop().ScheduleFlush(this);
}

void DownstreamSession::SubmitTrailers(int32_t stream_id, const HeaderBlock& trailers) {
  NvArray nv(trailers);
  nghttp2_submit_trailer(session_, stream_id, nv.data(), nv.size());
}

void DownstreamSession::ResumeData(int32_t stream_id) {
  nghttp2_session_resume_data(session_, stream_id);
  worker_->loop().ScheduleFlush(this);
}

void DownstreamSession::ConsumeRequest(int32_t stream_id, size_t n) {
  nghttp2_session_consume_stream(session_, stream_id, n);
  worker_->loop().ScheduleFlush(this);
}

void DownstreamSession::ResetStream(int32_t stream_id, uint32_t error_code) {
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code);
  worker_->loop().ScheduleFlush(this);
}

void DownstreamSession::SendShutdownNotice() {
  nghttp2_submit_shutdown_notice(session_);
  worker_->loop().ScheduleFlush(this);
}

void DownstreamSession::SendFinalGoaway() {
  if (final_goaway_sent_) return;
  final_goaway_sent_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  worker_->loop().ScheduleFlush(this);
}

void DownstreamSession::CheckTimeouts(Clock::time_point now) {
  if (lingering_) return;
  const ProxyOptions& o = worker_->options();
  if (!got_preface_ && now - created_ > o.handshake_timeout) {
    worker_->stats().idle_closes_total.fetch_add(1, std::memory_order_relaxed);
    Close();
    return;
  }
  if (streams_.empty() && now - last_activity_ > o.idle_timeout) {
    worker_->stats().idle_closes_total.fetch_add(1, std::memory_order_relaxed);
    nghttp2_session_terminate_session(session_, NGHTTP2_NO_ERROR);
    worker_->loop().ScheduleFlush(this);
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
  worker_->stats().flood_goaways_total.fetch_add(1, std::memory_order_relaxed);
  LogInfo("proxy: closing a downstream connection with ENHANCE_YOUR_CALM: {}", why);
  calmed_ = true;
  nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
  worker_->loop().ScheduleFlush(this);
}

bool DownstreamSession::CountFlood(uint32_t* counter, uint32_t limit) {
  Clock::time_point now = worker_->loop().now();
  if (now - flood_window_start_ >= std::chrono::seconds(1)) {
    flood_window_start_ = now;
    resets_in_window_ = 0;
    control_frames_in_window_ = 0;
  }
  return ++*counter > limit;
}

void DownstreamSession::OnIo(uint32_t events) {
  if (closed_) return;
  if (lingering_) {
    uint8_t buf[16 * 1024];
    ssize_t n = read(fd_, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) Close();
    return;
  }
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) HandleRead();
  if (!closed_) Flush();
}

bool DownstreamSession::HandleTlsHandshake() {
  using State = TlsHandshakeStep::State;
  TlsHandshakeStep step = ContinueTlsHandshake(ssl_);
  switch (step.state) {
    case State::kDone:
      if (step.alpn != "h2") {
        LogDebug("proxy: TLS client did not negotiate ALPN h2; closing");
        Close();
        return false;
      }
      tls_handshake_done_ = true;
      return true;
    case State::kWantRead:
    case State::kWantWrite:
      if ((step.state == State::kWantWrite) != want_out_) {
        want_out_ = step.state == State::kWantWrite;
        worker_->loop().Modify(fd_, EPOLLIN | (want_out_ ? uint32_t{EPOLLOUT} : 0u), this);
      }
      return false;
    case State::kFailed:
      LogDebug("proxy: TLS handshake with a client failed: {}", step.error);
      Close();
      return false;
  }
  return false;
}

ssize_t DownstreamSession::RawRead(uint8_t* buf, size_t len) {
  if (ssl_ == nullptr) return read(fd_, buf, len);
  return TlsRead(ssl_, buf, len);
}

ssize_t DownstreamSession::RawWrite(const uint8_t* buf, size_t len) {
  if (fd_ < 0) return static_cast<ssize_t>(len);  // fuzzing: output goes nowhere
  if (ssl_ == nullptr) return write(fd_, buf, len);
  return TlsWrite(ssl_, buf, len);
}

void DownstreamSession::HandleRead() {
  if (!tls_handshake_done_ && !HandleTlsHandshake()) return;
  uint8_t buf[64 * 1024];
  // SSL_read returns one TLS record (<= 16 KiB) at a time, and records OpenSSL already pulled
  // off the socket raise no further epoll event: keep reading while any are buffered.
  for (int i = 0; (i < kReadsPerEvent || (ssl_ != nullptr && SSL_has_pending(ssl_))) && !closed_;
       ++i) {
    if (!nghttp2_session_want_read(session_)) return;
    ssize_t n = RawRead(buf, sizeof(buf));
    if (n == 0) {
      Close();
      return;
    }
    if (n < 0) {
      if (errno != EAGAIN && errno != EINTR) Close();
      return;
    }
    if (!Receive(buf, n)) {
      Close();
      return;
    }
    if (ssl_ == nullptr && static_cast<size_t>(n) < sizeof(buf)) return;
  }
}

void DownstreamSession::Flush() {
  if (closed_ || lingering_ || !tls_handshake_done_) return;
  for (;;) {
    while (out_.size() < kOutputBatch) {
      const uint8_t* data;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        Close();
        return;
      }
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), n);
    }
    if (out_.empty()) break;
    ssize_t w = RawWrite(reinterpret_cast<const uint8_t*>(out_.data()), out_.size());
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      Close();
      return;
    }
    out_.erase(0, w);
    if (!out_.empty()) break;
  }
  if (out_.empty() &&
      ((!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_)) ||
       (final_goaway_sent_ && streams_.empty()))) {
    Linger();
    return;
  }
  UpdateEvents();
}

void DownstreamSession::UpdateEvents() {
  if (fd_ < 0) return;
  bool want_out = !out_.empty();
  if (want_out == want_out_) return;
  want_out_ = want_out;
  worker_->loop().Modify(fd_, EPOLLIN | (want_out ? uint32_t{EPOLLOUT} : 0u), this);
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
  if (want_out_) {
    want_out_ = false;
    worker_->loop().Modify(fd_, EPOLLIN, this);
  }
  linger_timer_ = worker_->loop().AddTimer(std::chrono::seconds(1), [this] {
    linger_timer_ = 0;
    Close();
  });
}

void DownstreamSession::Close() {
  if (closed_) return;
  closed_ = true;
  if (linger_timer_ != 0) worker_->loop().CancelTimer(linger_timer_);
  // Streams go first: they cancel their upstream halves.
  streams_.clear();
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    worker_->loop().Remove(fd_);
    close(fd_);
    fd_ = -1;
    if (!owner_gone_) worker_->OnDownstreamClosed(this);
  }
}

int DownstreamSession::OnBeginHeaders(nghttp2_session* session, const nghttp2_frame* frame,
                                      void* user_data) {
  auto* self = static_cast<DownstreamSession*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto stream = std::make_unique<ProxyStream>(self, frame->hd.stream_id);
  nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, stream.get());
  self->streams_[frame->hd.stream_id] = std::move(stream);
  return 0;
}

int DownstreamSession::OnHeader(nghttp2_session* session, const nghttp2_frame* frame,
                                const uint8_t* name, size_t namelen, const uint8_t* value,
                                size_t valuelen, uint8_t, void* user_data) {
  auto* self = static_cast<DownstreamSession*>(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  ProxyStream* stream = StreamOf(session, frame->hd.stream_id);
  if (stream == nullptr) return 0;
  if (!stream->AddRequestHeader({reinterpret_cast<const char*>(name), namelen},
                                {reinterpret_cast<const char*>(value), valuelen},
                                self->options().max_header_list_bytes)) {
    self->worker_->stats().header_limit_resets_total.fetch_add(1, std::memory_order_relaxed);
    // nghttp2 resets the stream (and keeps decoding the block so HPACK state stays right).
    return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  }
  return 0;
}

int DownstreamSession::OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                                   void* user_data) {
  auto* self = static_cast<DownstreamSession*>(user_data);
  const ProxyOptions& o = self->options();
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
      ProxyStream* stream = StreamOf(session, frame->hd.stream_id);
      if (stream == nullptr) return 0;
      bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
      if (frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        stream->OnRequestHeadersDone(end);
      } else if (end) {
        stream->OnRequestEnd();  // request trailers: gRPC sends none; they are dropped
      }
      return 0;
    }
    case NGHTTP2_DATA:
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        if (ProxyStream* stream = StreamOf(session, frame->hd.stream_id)) stream->OnRequestEnd();
      }
      return 0;
    case NGHTTP2_RST_STREAM:
      if (self->CountFlood(&self->resets_in_window_, o.max_resets_per_second))
        self->CalmDown("too many RST_STREAM frames (rapid reset)");
      return 0;
    case NGHTTP2_SETTINGS:
    case NGHTTP2_PING:
      if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) &&
          self->CountFlood(&self->control_frames_in_window_, o.max_control_frames_per_second))
        self->CalmDown("too many SETTINGS/PING frames");
      return 0;
    default:
      return 0;
  }
}

int DownstreamSession::OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                                   const uint8_t* data, size_t len, void* user_data) {
  // The connection window reopens at once (memory stays bounded by the per-stream windows);
  // the stream window only once the bytes went upstream.
  nghttp2_session_consume_connection(session, len);
  ProxyStream* stream = StreamOf(session, stream_id);
  if (stream == nullptr) {
    nghttp2_session_consume_stream(session, stream_id, len);
    return 0;
  }
  stream->Touch(static_cast<DownstreamSession*>(user_data)->worker_->loop().now());
  stream->OnRequestData(data, len);
  return 0;
}

int DownstreamSession::OnStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t,
                                     void* user_data) {
  auto* self = static_cast<DownstreamSession*>(user_data);
  nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
  self->streams_.erase(stream_id);
  return 0;
}

ssize_t DownstreamSession::ReadResponse(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                                        size_t length, uint32_t* flags, nghttp2_data_source*,
                                        void*) {
  ProxyStream* stream = StreamOf(session, stream_id);
  if (stream == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  return stream->ReadResponse(buf, length, flags);
}

}  // namespace podlb::proxy
