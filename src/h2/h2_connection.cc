#include "h2/h2_connection.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

namespace podlb::h2 {
namespace {

// nghttp2 output is gathered up to this much before one write(2)/SSL_write.
constexpr size_t kOutputBatch = 64 * 1024;
constexpr size_t kReadBuffer = 64 * 1024;
// The read policy, one for both roles: at most this many reads per epoll event, fewer when a
// plain socket returns less than a full buffer (it is drained). Reading until EAGAIN would let
// one busy connection (a bulk upload, an upstream streaming large responses to many clients)
// hold the worker while the other connections of that worker wait; epoll is level-triggered,
// so whatever stays in the socket raises the next event. A single read per event would cost
// an epoll_wait round trip per 64 KiB on busy connections. Records OpenSSL already took off
// the socket raise no event of their own, so TLS reads on while SSL_has_pending says some wait.
constexpr int kReadsPerEvent = 4;

}  // namespace

H2Connection::~H2Connection() {
  CloseSocket();
  DeleteSession();
}

const nghttp2_session_callbacks* H2Connection::Callbacks() {
  static nghttp2_session_callbacks* callbacks = [] {
    nghttp2_session_callbacks* cb;
    nghttp2_session_callbacks_new(&cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
          return Self(user_data)->OnBeginHeaders(*frame);
        });
    nghttp2_session_callbacks_set_on_header_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
               const uint8_t* value, size_t valuelen, uint8_t, void* user_data) {
          if (frame->hd.type != NGHTTP2_HEADERS) return 0;
          H2Connection* self = Self(user_data);
          void* stream = self->StreamData(frame->hd.stream_id);
          if (stream == nullptr) return 0;
          return self->OnHeader(stream, frame->headers.cat != NGHTTP2_HCAT_HEADERS,
                                {reinterpret_cast<const char*>(name), namelen},
                                {reinterpret_cast<const char*>(value), valuelen});
        });
    nghttp2_session_callbacks_set_on_frame_recv_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
          H2Connection* self = Self(user_data);
          const bool end_stream = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;
          switch (frame->hd.type) {
            case NGHTTP2_HEADERS:
              if (void* stream = self->StreamData(frame->hd.stream_id))
                self->OnHeadersEnd(stream, frame->headers.cat != NGHTTP2_HCAT_HEADERS, end_stream);
              return 0;
            case NGHTTP2_DATA:
              if (end_stream) {
                if (void* stream = self->StreamData(frame->hd.stream_id)) self->OnDataEnd(stream);
              }
              return 0;
            default:
              self->OnControlFrame(*frame);
              return 0;
          }
        });
    nghttp2_session_callbacks_set_on_frame_send_callback(
        cb, [](nghttp2_session*, const nghttp2_frame* frame, void* user_data) {
          if (frame->hd.type != NGHTTP2_HEADERS) return 0;
          H2Connection* self = Self(user_data);
          if (void* stream = self->StreamData(frame->hd.stream_id))
            self->OnHeadersSent(stream, *frame);
          return 0;
        });
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
        cb, [](nghttp2_session* session, uint8_t, int32_t stream_id, const uint8_t* data,
               size_t len, void* user_data) {
          nghttp2_session_consume_connection(session, len);
          H2Connection* self = Self(user_data);
          void* stream = self->StreamData(stream_id);
          if (stream == nullptr) {
            nghttp2_session_consume_stream(session, stream_id, len);
            return 0;
          }
          self->OnStreamData(stream, stream_id, data, len);
          return 0;
        });
    nghttp2_session_callbacks_set_on_stream_close_callback(
        cb, [](nghttp2_session* session, int32_t stream_id, uint32_t error_code, void* user_data) {
          H2Connection* self = Self(user_data);
          void* stream = self->StreamData(stream_id);
          if (stream != nullptr) nghttp2_session_set_stream_user_data(session, stream_id, nullptr);
          self->OnStreamClose(stream, stream_id, error_code);
          return 0;
        });
    return cb;
  }();
  return callbacks;
}

nghttp2_data_provider H2Connection::BodyProvider() {
  nghttp2_data_provider provider{};
  provider.read_callback = [](nghttp2_session*, int32_t stream_id, uint8_t* buf, size_t length,
                              uint32_t* flags, nghttp2_data_source*, void* user_data) -> ssize_t {
    H2Connection* self = Self(user_data);
    void* stream = self->StreamData(stream_id);
    if (stream == nullptr) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    return self->ReadBody(stream, buf, length, flags);
  };
  return provider;
}

void H2Connection::NewSession(Role role, const nghttp2_option* option) {
  // The base pointer, which is what the callbacks cast user_data back to.
  void* user_data = static_cast<H2Connection*>(this);
  if (role == Role::kServer) {
    nghttp2_session_server_new2(&session_, Callbacks(), user_data, option);
  } else {
    nghttp2_session_client_new2(&session_, Callbacks(), user_data, option);
  }
}

void H2Connection::DeleteSession() {
  if (session_ == nullptr) return;
  nghttp2_session_del(session_);
  session_ = nullptr;
}

H2Connection::ReadEnd H2Connection::ReadInput() {
  uint8_t buf[kReadBuffer];
  for (int i = 0; i < kReadsPerEvent || (ssl_ != nullptr && SSL_has_pending(ssl_)); ++i) {
    if (closed() || !nghttp2_session_want_read(session_)) return ReadEnd::kStopped;
    ssize_t n = RawRead(buf, sizeof(buf));
    if (n == 0) return ReadEnd::kPeerClosed;
    if (n < 0) return errno == EAGAIN || errno == EINTR ? ReadEnd::kDrained : ReadEnd::kFailed;
    if (!OnInput(buf, static_cast<size_t>(n))) return ReadEnd::kInputRejected;
    if (ssl_ == nullptr && static_cast<size_t>(n) < sizeof(buf)) return ReadEnd::kDrained;
  }
  return ReadEnd::kDrained;
}

bool H2Connection::WriteOutput(std::string* error) {
  for (;;) {
    // Batch frames into one write: in the loop's scratch buffer when nothing is pending (the
    // usual case), else behind what is pending, to keep the order.
    const bool pending = !out_.empty();
    std::string& batch = pending ? out_ : loop_.output_scratch();
    while (batch.size() < kOutputBatch) {
      const uint8_t* data;
      ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        batch.clear();
        *error = std::string("HTTP/2 send: ") + nghttp2_strerror(static_cast<int>(n));
        return false;
      }
      if (n == 0) break;
      batch.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    if (batch.empty()) return true;
    ssize_t w = RawWrite(reinterpret_cast<const uint8_t*>(batch.data()), batch.size());
    if (w < 0 && errno != EAGAIN && errno != EINTR) {
      batch.clear();
      *error = IoError("write");
      return false;
    }
    batch.erase(0, w < 0 ? 0 : static_cast<size_t>(w));
    if (!pending && !batch.empty()) {
      // The socket took part: what is left waits in the connection's own buffer (EPOLLOUT).
      out_.assign(batch);
      batch.clear();
    }
    if (!out_.empty()) return true;
    if (pending) std::string().swap(out_);  // drained: an idle connection holds no buffer
  }
}

void H2Connection::SetWantOut(bool want_out) {
  if (fd_ < 0 || want_out == want_out_) return;
  want_out_ = want_out;
  loop_.Modify(fd_, EPOLLIN | (want_out ? uint32_t{EPOLLOUT} : 0u), this);
}

TlsHandshakeStep H2Connection::StepTlsHandshake() {
  TlsHandshakeStep step = ContinueTlsHandshake(ssl_);
  if (step.state == TlsHandshakeStep::State::kWantRead ||
      step.state == TlsHandshakeStep::State::kWantWrite)
    SetWantOut(step.state == TlsHandshakeStep::State::kWantWrite);
  return step;
}

bool H2Connection::ServeReadable(uint32_t events, std::string* handshake_failure) {
  if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP))) return true;
  if (!tls_handshake_done_) {
    TlsHandshakeStep step = StepTlsHandshake();
    switch (step.state) {
      case TlsHandshakeStep::State::kWantRead:
      case TlsHandshakeStep::State::kWantWrite:
        return true;
      case TlsHandshakeStep::State::kFailed:
        *handshake_failure = step.error;
        return false;
      case TlsHandshakeStep::State::kDone:
        if (step.alpn != "h2") {
          *handshake_failure = "the client did not negotiate ALPN h2";
          return false;
        }
        tls_handshake_done_ = true;
        break;
    }
  }
  switch (ReadInput()) {
    case ReadEnd::kDrained:
    case ReadEnd::kStopped:
      return true;
    case ReadEnd::kPeerClosed:
    case ReadEnd::kFailed:
    case ReadEnd::kInputRejected:
      return false;
  }
  return false;
}

const char* H2Connection::CountFlood(const nghttp2_frame& frame, const FloodLimits& limits) {
  uint32_t* counter;
  uint32_t limit;
  const char* what;
  if (frame.hd.type == NGHTTP2_RST_STREAM) {
    counter = &resets_in_window_;
    limit = limits.resets_per_second;
    what = "too many RST_STREAM frames (rapid reset)";
  } else if ((frame.hd.type == NGHTTP2_SETTINGS || frame.hd.type == NGHTTP2_PING) &&
             !(frame.hd.flags & NGHTTP2_FLAG_ACK)) {
    counter = &control_frames_in_window_;
    limit = limits.control_frames_per_second;
    what = "too many SETTINGS/PING frames";
  } else {
    return nullptr;
  }
  Clock::time_point now = loop_.now();
  if (now - flood_window_start_ >= std::chrono::seconds(1)) {
    flood_window_start_ = now;
    resets_in_window_ = 0;
    control_frames_in_window_ = 0;
  }
  return ++*counter > limit ? what : nullptr;
}

ssize_t H2Connection::RawRead(uint8_t* buf, size_t len) {
  return ssl_ != nullptr ? TlsRead(ssl_, buf, len, &tls_error_) : read(fd_, buf, len);
}

ssize_t H2Connection::RawWrite(const uint8_t* buf, size_t len) {
  if (fd_ < 0) return static_cast<ssize_t>(len);  // fuzzing: no socket, output goes nowhere
  return ssl_ != nullptr ? TlsWrite(ssl_, buf, len, &tls_error_) : write(fd_, buf, len);
}

std::string H2Connection::IoError(const char* what) const {
  if (!tls_error_.empty()) return tls_error_;
  return std::string(what) + ": " + strerror(errno);
}

void H2Connection::CloseSocket() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    loop_.Remove(fd_);
    close(fd_);
    fd_ = -1;
  }
}

}  // namespace podlb::h2
