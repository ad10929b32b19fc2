#include "proxy/upstream_session.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <vector>

#include "core/logging.h"
#include "proxy/cluster.h"
#include "proxy/tls.h"
#include "proxy/nv_array.h"
#include "proxy/upstream_stream.h"
#include "proxy/worker.h"

namespace podlb::proxy {
namespace {

constexpr size_t kOutputBatch = 64 * 1024;
// Streams assumed allowed before the peer's SETTINGS arrive (RFC 9113 recommends >= 100).
constexpr uint32_t kAssumedMaxStreams = 100;
constexpr int32_t kUpstreamConnectionWindow = 16 * 1024 * 1024;

UpstreamStreamHandler* StreamOf(nghttp2_session* session, int32_t id) {
  return static_cast<UpstreamStreamHandler*>(nghttp2_session_get_stream_user_data(session, id));
}

}  // namespace

nghttp2_session_callbacks* UpstreamSession::Callbacks() {
  static nghttp2_session_callbacks* callbacks = [] {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_header_callback(cb, &UpstreamSession::OnHeader);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, &UpstreamSession::OnFrameRecv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, &UpstreamSession::OnFrameSend);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, &UpstreamSession::OnDataChunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, &UpstreamSession::OnStreamClose);
    return cb;
  }();
  return callbacks;
}

UpstreamSession::UpstreamSession(Worker* worker, Cluster* cluster, UpstreamHost* host)
    : worker_(worker), cluster_(cluster), host_(host) {}

UpstreamSession::~UpstreamSession() {
  if (state_ != State::kClosed) Close("session destroyed");
}

bool UpstreamSession::Connect() {
  fd_ = socket(host_->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return false;
  int one = 1;
  setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int rc = connect(fd_, reinterpret_cast<const sockaddr*>(&host_->addr), host_->addr_len);
  if (rc < 0 && errno != EINPROGRESS) {
    LogDebug("proxy: connect to {}: {}", host_->host_port, strerror(errno));
    close(fd_);
    fd_ = -1;
    state_ = State::kClosed;
    return false;
  }
  nghttp2_option* option;
  nghttp2_option_new(&option);
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_option_set_peer_max_concurrent_streams(option, kAssumedMaxStreams);
  nghttp2_option_set_no_closed_streams(option, 1);  // no priority tree to keep them for
  nghttp2_session_client_new2(&session_, Callbacks(), this, option);
  nghttp2_option_del(option);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, worker_->options().stream_window},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 3);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kUpstreamConnectionWindow);
  want_out_ = true;  // EPOLLOUT reports the connect result
  worker_->loop().Add(fd_, EPOLLIN | EPOLLOUT, this);
  connect_timer_ = worker_->loop().AddTimer(worker_->options().connect_timeout, [this] {
    connect_timer_ = 0;
    if (state_ == State::kConnecting) Close("connect timed out");
    if (state_ == State::kHandshaking) Close("TLS handshake timed out");
  });
  return true;
}

bool UpstreamSession::HasCapacity() const {
  if (state_ == State::kClosed || goaway_ || retired_) return false;
  uint32_t limit =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  // Stream ids run out after 2^30 requests: roll over to a fresh connection before that.
  if (nghttp2_session_get_next_stream_id(session_) > (1 << 30)) return false;
  return streams_.size() < limit;
}

int32_t UpstreamSession::Submit(UpstreamStreamHandler* stream) {
  const HeaderBlock& headers = stream->request_headers();
  NvArray nv(headers);
  nghttp2_data_provider provider{};
  provider.read_callback = &UpstreamSession::ReadRequest;
  int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), &provider, stream);
  if (id < 0) {
    goaway_ = true;  // ids exhausted or session going away: no more streams here
    return -1;
  }
  streams_.emplace(id, stream);
  if (state_ == State::kConnected) worker_->loop().ScheduleFlush(this);
  return id;
}

void UpstreamSession::Cancel(int32_t stream_id) {
  if (streams_.erase(stream_id) == 0) return;
  if (state_ == State::kClosed) return;
  nghttp2_session_set_stream_user_data(session_, stream_id, nullptr);
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
  worker_->loop().ScheduleFlush(this);
}

void UpstreamSession::ResumeData(int32_t stream_id) {
  if (state_ == State::kClosed) return;
  nghttp2_session_resume_data(session_, stream_id);
  if (state_ == State::kConnected) worker_->loop().ScheduleFlush(this);
}

void UpstreamSession::Consume(int32_t stream_id, size_t n) {
  if (state_ == State::kClosed) return;
  nghttp2_session_consume_stream(session_, stream_id, n);
  if (state_ == State::kConnected) worker_->loop().ScheduleFlush(this);
}

void UpstreamSession::Retire() {
  retired_ = true;
  MaybeFinishDrain();
}

void UpstreamSession::MaybeFinishDrain() {
  if ((retired_ || goaway_) && streams_.empty() && state_ != State::kClosed && !finishing_) {
    finishing_ = true;
    if (state_ == State::kConnected && retired_) {
      nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                            nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                            nullptr, 0);
      Flush();
    }
    Close("drained");
  }
}

void UpstreamSession::OnConnected() {
  int err = 0;
  socklen_t len = sizeof(err);
  getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len);
  if (err != 0) {
    Close(std::string("connect: ") + strerror(err));
    return;
  }
  SSL_CTX* tls = worker_->upstream_tls();
  if (tls == nullptr) {
    OnReady();
    return;
  }
  ssl_ = SSL_new(tls);
  SSL_set_fd(ssl_, fd_);
  SSL_set_connect_state(ssl_);
  const std::string& name = worker_->options().upstream_tls.server_name;
  if (!name.empty()) {
    SSL_set_tlsext_host_name(ssl_, name.c_str());
    SSL_set1_host(ssl_, name.c_str());  // the certificate must carry this name
  }
  state_ = State::kHandshaking;  // the connect timer keeps running: it bounds the handshake too
  ContinueHandshake();
}

void UpstreamSession::ContinueHandshake() {
  using State = TlsHandshakeStep::State;
  TlsHandshakeStep step = ContinueTlsHandshake(ssl_);
  switch (step.state) {
    case State::kDone:
      // gRPC servers always negotiate h2; a server that picks another protocol would not
      // understand our frames. One that ignores ALPN altogether is given the benefit of the doubt.
      if (!step.alpn.empty() && step.alpn != "h2") {
        Close("TLS: the endpoint negotiated ALPN \"" + step.alpn + "\", not h2");
        return;
      }
      OnReady();
      return;
    case State::kWantRead:
    case State::kWantWrite:
      SetWantOut(step.state == State::kWantWrite);
      return;
    case State::kFailed:
      Close("TLS handshake: " + step.error);
      return;
  }
}

void UpstreamSession::OnReady() {
  state_ = State::kConnected;
  if (connect_timer_ != 0) worker_->loop().CancelTimer(connect_timer_);
  connect_timer_ = 0;
}

ssize_t UpstreamSession::RawRead(uint8_t* buf, size_t len) {
  return ssl_ != nullptr ? TlsRead(ssl_, buf, len, &tls_error_) : read(fd_, buf, len);
}

ssize_t UpstreamSession::RawWrite(const uint8_t* buf, size_t len) {
  return ssl_ != nullptr ? TlsWrite(ssl_, buf, len, &tls_error_) : write(fd_, buf, len);
}

std::string UpstreamSession::IoError(const char* what) const {
  if (!tls_error_.empty()) return tls_error_;
  return std::string(what) + ": " + strerror(errno);
}

void UpstreamSession::OnIo(uint32_t events) {
  if (state_ == State::kClosed) return;
  if (state_ == State::kConnecting) {
    if (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) OnConnected();
    if (state_ == State::kConnecting) return;
  } else if (state_ == State::kHandshaking) {
    ContinueHandshake();
  }
  if (state_ != State::kConnected) return;
  // With TLS, records OpenSSL already took off the socket (e.g. during the handshake) raise no
  // epoll event of their own.
  if (events & (EPOLLIN | EPOLLERR | EPOLLHUP) || (ssl_ != nullptr && SSL_has_pending(ssl_))) {
    uint8_t buf[64 * 1024];
    // One read per event for h2c (level-triggered epoll fires again). SSL_read returns one TLS
    // record at a time, and records OpenSSL already took off the socket raise no event: drain them.
    do {
      ssize_t n = RawRead(buf, sizeof(buf));
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        Close(n != 0           ? IoError("read")
              : received_any_  ? "connection closed by the endpoint"
              : ssl_ != nullptr ? "TLS: the endpoint closed the connection right after the "
                                  "handshake (does it require a client certificate? "
                                  "--upstream-cert)"
                                : "connection closed by the endpoint before a byte");
        return;
      }
      if (n < 0) break;
      received_any_ = true;
      ssize_t rv = nghttp2_session_mem_recv(session_, buf, n);
      if (rv < 0) {
        Close(std::string("HTTP/2 error from the endpoint: ") + nghttp2_strerror(rv));
        return;
      }
    } while (ssl_ != nullptr && SSL_has_pending(ssl_));
  }
  Flush();
}

void UpstreamSession::Flush() {
  if (state_ != State::kConnected) return;
  for (;;) {
    while (out_.size() < kOutputBatch) {
      const uint8_t* data;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        Close(std::string("HTTP/2 send: ") + nghttp2_strerror(n));
        return;
      }
      if (n == 0) break;
      out_.append(reinterpret_cast<const char*>(data), n);
    }
    if (out_.empty()) break;
    ssize_t w = RawWrite(reinterpret_cast<const uint8_t*>(out_.data()), out_.size());
    if (w < 0) {
      if (errno == EAGAIN || errno == EINTR) break;
      Close(IoError("write"));
      return;
    }
    out_.erase(0, w);
    if (!out_.empty()) break;
  }
  UpdateEvents();
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_) &&
      out_.empty()) {
    Close("session finished");
    return;
  }
  MaybeFinishDrain();
}

void UpstreamSession::UpdateEvents() { SetWantOut(!out_.empty()); }

void UpstreamSession::SetWantOut(bool want_out) {
  if (want_out == want_out_) return;
  want_out_ = want_out;
  worker_->loop().Modify(fd_, EPOLLIN | (want_out ? uint32_t{EPOLLOUT} : 0u), this);
}

void UpstreamSession::Close(const std::string& reason) {
  if (state_ == State::kClosed) return;
  bool never_connected = state_ == State::kConnecting || state_ == State::kHandshaking;
  state_ = State::kClosed;
  if (never_connected || !streams_.empty()) {
    // A failure calls may report. Logged once per distinct reason per host, not per attempt.
    if (reason != host_->last_error) {
      LogWarn("proxy: {} to {}: {}", never_connected ? "cannot connect" : "connection lost",
              host_->host_port, reason);
    }
    host_->last_error = reason;
  }
  if (connect_timer_ != 0) worker_->loop().CancelTimer(connect_timer_);
  connect_timer_ = 0;
  if (ssl_ != nullptr) {
    SSL_free(ssl_);  // no close_notify: the socket closes right below
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    worker_->loop().Remove(fd_);
    close(fd_);
    fd_ = -1;
  }
  if (!streams_.empty()) {
    LogDebug("proxy: upstream {} lost with {} streams: {}", host_->host_port, streams_.size(),
             reason);
    if (never_connected) cluster_->ReportConnectFailure(host_);
  }
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, stream] : streams)
    stream->OnUpstreamClosed(NGHTTP2_INTERNAL_ERROR, true, never_connected);
  if (session_ != nullptr) {
    nghttp2_session_del(session_);
    session_ = nullptr;
  }
}

int UpstreamSession::OnHeader(nghttp2_session* session, const nghttp2_frame* frame,
                              const uint8_t* name, size_t namelen, const uint8_t* value,
                              size_t valuelen, uint8_t, void*) {
  if (frame->hd.type != NGHTTP2_HEADERS) return 0;
  UpstreamStreamHandler* stream = StreamOf(session, frame->hd.stream_id);
  if (stream == nullptr) return 0;
  stream->AddResponseHeader(frame->headers.cat == NGHTTP2_HCAT_HEADERS,
                            {reinterpret_cast<const char*>(name), namelen},
                            {reinterpret_cast<const char*>(value), valuelen});
  return 0;
}

int UpstreamSession::OnFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                                 void* user_data) {
  auto* self = static_cast<UpstreamSession*>(user_data);
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS: {
      UpstreamStreamHandler* stream = StreamOf(session, frame->hd.stream_id);
      if (stream == nullptr) return 0;
      bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
      if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        stream->OnResponseHeadersDone(end);
      } else if (end) {
        stream->OnResponseEnd();
      }
      return 0;
    }
    case NGHTTP2_DATA:
      if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) {
        if (UpstreamStreamHandler* stream = StreamOf(session, frame->hd.stream_id))
          stream->OnResponseEnd();
      }
      return 0;
    case NGHTTP2_GOAWAY:
      // Streams above last_stream_id are closed by nghttp2 with REFUSED_STREAM and retried.
      self->goaway_ = true;
      return 0;
    default:
      return 0;
  }
}

int UpstreamSession::OnFrameSend(nghttp2_session* session, const nghttp2_frame* frame, void*) {
  if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
    if (UpstreamStreamHandler* stream = StreamOf(session, frame->hd.stream_id))
      stream->OnRequestHeadersSent();
  }
  return 0;
}

int UpstreamSession::OnDataChunk(nghttp2_session* session, uint8_t, int32_t stream_id,
                                 const uint8_t* data, size_t len, void*) {
  // The connection window reopens at once; the stream window only as the client reads.
  nghttp2_session_consume_connection(session, len);
  UpstreamStreamHandler* stream = StreamOf(session, stream_id);
  if (stream == nullptr) {
    nghttp2_session_consume_stream(session, stream_id, len);
    return 0;
  }
  stream->OnResponseData(data, len);
  return 0;
}

int UpstreamSession::OnStreamClose(nghttp2_session* session, int32_t stream_id, uint32_t error_code,
                                   void* user_data) {
  auto* self = static_cast<UpstreamSession*>(user_data);
  UpstreamStreamHandler* stream = StreamOf(session, stream_id);
  self->streams_.erase(stream_id);
  if (stream != nullptr) {
    nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
    stream->OnUpstreamClosed(error_code, false, false);
  }
  return 0;
}

ssize_t UpstreamSession::ReadRequest(nghttp2_session* session, int32_t stream_id, uint8_t* buf,
                                     size_t length, uint32_t* flags, nghttp2_data_source*, void*) {
  UpstreamStreamHandler* stream = StreamOf(session, stream_id);
  if (stream == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  return stream->ReadRequest(buf, length, flags);
}

}  // namespace podlb::proxy
