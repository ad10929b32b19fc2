#include "proxy/upstream_session.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/logging.h"
#include "proxy/cluster.h"
#include "proxy/nv_array.h"
#include "proxy/upstream_stream.h"

namespace podlb::proxy {
namespace {

// Streams assumed allowed before the peer's SETTINGS arrive (RFC 9113 recommends >= 100).
constexpr uint32_t kAssumedMaxStreams = 100;
constexpr int32_t kUpstreamConnectionWindow = 16 * 1024 * 1024;

}  // namespace

UpstreamSession::UpstreamSession(EventLoop& loop, const UpstreamConnectionConfig& config,
                                 Cluster* cluster, UpstreamHost* host)
    : H2Connection(loop), config_(config), cluster_(cluster), host_(host) {}

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
  NewSession(Role::kClient, option);
  nghttp2_option_del(option);
  nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, config_.stream_window},
      {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 3);
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kUpstreamConnectionWindow);
  want_out_ = true;  // EPOLLOUT reports the connect result
  loop_.Add(fd_, EPOLLIN | EPOLLOUT, this);
  connect_timer_ = loop_.AddTimer(config_.connect_timeout, [this] {
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
  nghttp2_data_provider provider = BodyProvider();
  int32_t id = nghttp2_submit_request(session_, nullptr, nv.data(), nv.size(), &provider, stream);
  if (id < 0) {
    goaway_ = true;  // ids exhausted or session going away: no more streams here
    return -1;
  }
  streams_.emplace(id, stream);
  if (state_ == State::kConnected) loop_.ScheduleFlush(this);
  return id;
}

void UpstreamSession::Cancel(int32_t stream_id) {
  if (streams_.erase(stream_id) == 0) return;
  if (state_ == State::kClosed) return;
  nghttp2_session_set_stream_user_data(session_, stream_id, nullptr);
  nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, NGHTTP2_CANCEL);
  loop_.ScheduleFlush(this);
}

void UpstreamSession::ResumeData(int32_t stream_id) {
  if (state_ == State::kClosed) return;
  nghttp2_session_resume_data(session_, stream_id);
  if (state_ == State::kConnected) loop_.ScheduleFlush(this);
}

void UpstreamSession::Consume(int32_t stream_id, size_t n) {
  if (state_ == State::kClosed) return;
  nghttp2_session_consume_stream(session_, stream_id, n);
  if (state_ == State::kConnected) loop_.ScheduleFlush(this);
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
  if (config_.tls == nullptr) {
    OnReady();
    return;
  }
  ssl_ = SSL_new(config_.tls);
  SSL_set_fd(ssl_, fd_);
  SSL_set_connect_state(ssl_);
  const std::string& name = config_.tls_server_name;
  if (!name.empty()) {
    SSL_set_tlsext_host_name(ssl_, name.c_str());
    SSL_set1_host(ssl_, name.c_str());  // the certificate must carry this name
  }
  state_ = State::kHandshaking;  // the connect timer keeps running: it bounds the handshake too
  ContinueHandshake();
}

void UpstreamSession::ContinueHandshake() {
  TlsHandshakeStep step = StepTlsHandshake();
  switch (step.state) {
    case TlsHandshakeStep::State::kDone:
      // gRPC servers always negotiate h2; a server that picks another protocol would not
      // understand our frames. One that ignores ALPN altogether is given the benefit of the doubt.
      if (!step.alpn.empty() && step.alpn != "h2") {
        Close("TLS: the endpoint negotiated ALPN \"" + step.alpn + "\", not h2");
        return;
      }
      OnReady();
      return;
    case TlsHandshakeStep::State::kWantRead:
    case TlsHandshakeStep::State::kWantWrite:
      return;  // StepTlsHandshake set the interest it waits for
    case TlsHandshakeStep::State::kFailed:
      Close("TLS handshake: " + step.error);
      return;
  }
}

void UpstreamSession::OnReady() {
  state_ = State::kConnected;
  if (connect_timer_ != 0) loop_.CancelTimer(connect_timer_);
  connect_timer_ = 0;
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
    switch (ReadInput()) {
      case ReadEnd::kDrained:
      case ReadEnd::kStopped:
        break;
      case ReadEnd::kFailed:
        Close(IoError("read"));
        return;
      case ReadEnd::kPeerClosed:
        Close(received_any_      ? "connection closed by the endpoint"
              : ssl_ != nullptr ? "TLS: the endpoint closed the connection right after the "
                                  "handshake (does it require a client certificate? "
                                  "UpstreamTlsOptions::cert_file)"
                                : "connection closed by the endpoint before a byte");
        return;
      case ReadEnd::kInputRejected:
        return;  // OnInput closed the session with the reason
    }
  }
  Flush();
}

bool UpstreamSession::OnInput(const uint8_t* data, size_t len) {
  received_any_ = true;
  ssize_t rv = nghttp2_session_mem_recv(session_, data, len);
  if (rv < 0) {
    Close(std::string("HTTP/2 error from the endpoint: ") + nghttp2_strerror(static_cast<int>(rv)));
    return false;
  }
  return true;
}

void UpstreamSession::Flush() {
  if (state_ != State::kConnected) return;
  std::string error;
  if (!WriteOutput(&error)) {
    Close(error);
    return;
  }
  UpdateEvents();
  if (!nghttp2_session_want_read(session_) && !nghttp2_session_want_write(session_) &&
      out_.empty()) {
    Close("session finished");
    return;
  }
  MaybeFinishDrain();
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
  if (connect_timer_ != 0) loop_.CancelTimer(connect_timer_);
  connect_timer_ = 0;
  CloseSocket();
  if (!streams_.empty()) {
    LogDebug("proxy: upstream {} lost with {} streams: {}", host_->host_port, streams_.size(),
             reason);
    if (never_connected) cluster_->ReportConnectFailure(host_);
  }
  auto streams = std::move(streams_);
  streams_.clear();
  for (auto& [id, stream] : streams)
    stream->OnUpstreamClosed(NGHTTP2_INTERNAL_ERROR, true, never_connected);
  DeleteSession();
}

int UpstreamSession::OnHeader(void* stream, bool first_block, std::string_view name,
                              std::string_view value) {
  AsStream(stream)->AddResponseHeader(/*trailer=*/!first_block, name, value);
  return 0;
}

void UpstreamSession::OnHeadersEnd(void* stream, bool first_block, bool end_stream) {
  if (first_block) {
    AsStream(stream)->OnResponseHeadersDone(end_stream);
  } else if (end_stream) {
    AsStream(stream)->OnResponseEnd();
  }
}

void UpstreamSession::OnDataEnd(void* stream) { AsStream(stream)->OnResponseEnd(); }

void UpstreamSession::OnStreamData(void* stream, int32_t, const uint8_t* data, size_t len) {
  // The stream window reopens only as the client reads (Consume).
  AsStream(stream)->OnResponseData(data, len);
}

void UpstreamSession::OnControlFrame(const nghttp2_frame& frame) {
  // Streams above last_stream_id are closed by nghttp2 with REFUSED_STREAM and retried.
  if (frame.hd.type == NGHTTP2_GOAWAY) goaway_ = true;
}

void UpstreamSession::OnHeadersSent(void* stream, const nghttp2_frame& frame) {
  if (frame.headers.cat == NGHTTP2_HCAT_REQUEST) AsStream(stream)->OnRequestHeadersSent();
}

void UpstreamSession::OnStreamClose(void* stream, int32_t stream_id, uint32_t error_code) {
  streams_.erase(stream_id);
  if (stream != nullptr) AsStream(stream)->OnUpstreamClosed(error_code, false, false);
}

ssize_t UpstreamSession::ReadBody(void* stream, uint8_t* buf, size_t len, uint32_t* flags) {
  return AsStream(stream)->ReadRequest(buf, len, flags);
}

}  // namespace podlb::proxy
