// H2Connection: what both kinds of the proxy's HTTP/2 connections share — the socket (h2c, or
// TLS once the subclass attached an SSL), one nghttp2 session over it, the read policy, the
// batched write loop, the epoll interest, and one nghttp2 callback table that hands frame
// events to the subclass. DownstreamSession (server role: clients' streams become ProxyStreams)
// and UpstreamSession (client role: streams of ProxyStreams and health probes) keep only what
// differs. Worker thread only.
#pragma once

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>
#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "h2/event_loop.h"
#include "h2/tls.h"

namespace podlb::h2 {

class H2Connection : public IoHandler, public Flushable, public Deletable {
 public:
  ~H2Connection() override;
  H2Connection(const H2Connection&) = delete;
  H2Connection& operator=(const H2Connection&) = delete;

  // Closed connections read, write and call back nothing more.
  virtual bool closed() const = 0;

 protected:
  explicit H2Connection(EventLoop& loop) : loop_(loop) {}

  enum class Role { kServer, kClient };
  // Creates session_ with the shared callback table; `option` stays the caller's.
  void NewSession(Role role, const nghttp2_option* option);
  void DeleteSession();
  // The data provider for bodies this side sends; its reads go to ReadBody().
  static nghttp2_data_provider BodyProvider();
  void* StreamData(int32_t stream_id) const {
    return nghttp2_session_get_stream_user_data(session_, stream_id);
  }

  // nghttp2's events, already sorted. `stream` is the stream's user data, never null: events of
  // streams without it are dropped here (and their DATA consumed, so windows stay open).
  virtual int OnBeginHeaders(const nghttp2_frame& /*frame*/) { return 0; }
  // One header field of a HEADERS block (`first_block`: request or response headers, not
  // trailers). Non-zero (an nghttp2 error code) rejects it.
  virtual int OnHeader(void* stream, bool first_block, std::string_view name,
                       std::string_view value) = 0;
  // A HEADERS block ended (`first_block` as above; `end_stream`: the peer sends nothing more).
  virtual void OnHeadersEnd(void* stream, bool first_block, bool end_stream) = 0;
  // DATA with END_STREAM (or trailers' END_STREAM goes through OnHeadersEnd).
  virtual void OnDataEnd(void* stream) = 0;
  // After the connection window reopened: it does at once, bounded by the per-stream windows,
  // which reopen only once the bytes went on (the subclass consumes them).
  virtual void OnStreamData(void* stream, int32_t stream_id, const uint8_t* data, size_t len) = 0;
  // Frames other than HEADERS and DATA (SETTINGS, PING, RST_STREAM, GOAWAY, ...).
  virtual void OnControlFrame(const nghttp2_frame& /*frame*/) {}
  virtual void OnHeadersSent(void* /*stream*/, const nghttp2_frame& /*frame*/) {}
  // The stream's user data was cleared already; `stream` may be null here.
  virtual void OnStreamClose(void* stream, int32_t stream_id, uint32_t error_code) = 0;
  // nghttp2 data source semantics: bytes, NGHTTP2_ERR_DEFERRED, *flags |= NGHTTP2_DATA_FLAG_EOF.
  virtual ssize_t ReadBody(void* stream, uint8_t* buf, size_t len, uint32_t* flags) = 0;
  // Bytes read off the socket, for nghttp2. False: the connection must end (the subclass may
  // have closed it already, with its reason).
  virtual bool OnInput(const uint8_t* data, size_t len) = 0;

  // How ReadInput stopped.
  enum class ReadEnd {
    kDrained,        // the socket would block, or this event's read budget is spent
    kStopped,        // closed meanwhile, or nghttp2 wants no more input
    kPeerClosed,     // EOF
    kFailed,         // read error (IoError("read") says which)
    kInputRejected,  // OnInput returned false
  };
  ReadEnd ReadInput();
  // Moves nghttp2's output to the socket until it would block or nghttp2 has nothing more.
  // False on a fatal error; `error` then says why.
  bool WriteOutput(std::string* error);
  // EPOLLOUT interest while output is queued (EPOLLIN always).
  void UpdateEvents() { SetWantOut(!out_.empty()); }
  void SetWantOut(bool want_out);
  // One step of the TLS handshake; while it waits, the epoll interest follows what it waits for.
  TlsHandshakeStep StepTlsHandshake();
  // A server connection's accepted socket, and its accept-state SSL (which the connection then
  // owns; null for h2c). Until the TLS handshake is done, ServeReadable steps it.
  void AdoptServerSocket(int fd, SSL* ssl) {
    fd_ = fd;
    ssl_ = ssl;
    tls_handshake_done_ = ssl == nullptr;
  }
  // The readable half of a server connection's event: the TLS handshake first (the client must
  // choose ALPN h2), then the input for nghttp2. False when the connection must close; a failed
  // handshake says why in `handshake_failure` (a peer that closed, or a failed read, needs no
  // words).
  bool ServeReadable(uint32_t events, std::string* handshake_failure);

  // What a server lets a client send per second before it ends the connection with
  // GOAWAY(ENHANCE_YOUR_CALM): RST_STREAM (rapid reset, CVE-2023-44487), and SETTINGS/PING
  // frames that are not ACKs.
  struct FloodLimits {
    uint32_t resets_per_second;
    uint32_t control_frames_per_second;
  };
  // Counts `frame` against `limits` over one-second windows of the loop's clock: the flood's
  // description once over a limit, else nullptr.
  const char* CountFlood(const nghttp2_frame& frame, const FloodLimits& limits);
  // read(2)/write(2) conventions; with fd_ < 0 (the fuzzer) output goes nowhere.
  ssize_t RawRead(uint8_t* buf, size_t len);
  ssize_t RawWrite(const uint8_t* buf, size_t len);
  // errno's (or OpenSSL's) reason for the last failed RawRead/RawWrite.
  std::string IoError(const char* what) const;
  // Frees the SSL (no close_notify: the socket closes right after) and closes the socket.
  void CloseSocket();

  EventLoop& loop_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  nghttp2_session* session_ = nullptr;
  bool want_out_ = false;  // EPOLLOUT is in the registered interest
  std::string out_;        // bytes nghttp2 produced that the socket did not take yet
  bool tls_handshake_done_ = true;  // server side: false until ServeReadable finished it

 private:
  static const nghttp2_session_callbacks* Callbacks();
  static H2Connection* Self(void* user_data) { return static_cast<H2Connection*>(user_data); }

  std::string tls_error_;  // OpenSSL's reason for the last fatal RawRead/RawWrite
  Clock::time_point flood_window_start_{};
  uint32_t resets_in_window_ = 0;
  uint32_t control_frames_in_window_ = 0;
};

}  // namespace podlb::h2
