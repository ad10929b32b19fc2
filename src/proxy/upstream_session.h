// UpstreamSession: one HTTP/2 client connection (h2c, or TLS with ALPN h2 when the worker has an
// upstream TLS context) from a worker to one upstream endpoint,
// shared by every downstream stream the worker balances onto that endpoint. Honours the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS (the host opens another session when full) and GOAWAY (no new
// streams, the rest finish, then the session closes). Window updates are manual: response bytes
// are consumed only once the downstream side took them. Worker thread only.
#pragma once

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <string>
#include <unordered_map>

#include "proxy/event_loop.h"

namespace podlb::proxy {

class UpstreamStreamHandler;
class Cluster;
struct UpstreamHost;
class Worker;

class UpstreamSession : public IoHandler, public Flushable, public Deletable {
 public:
  UpstreamSession(Worker* worker, Cluster* cluster, UpstreamHost* host);
  ~UpstreamSession() override;

  // Starts a non-blocking connect. An error means the host is unreachable right now.
  bool Connect();
  // Room for a new stream: connected or connecting, no GOAWAY, below the peer's stream limit.
  bool HasCapacity() const;
  bool closed() const { return state_ == State::kClosed; }
  size_t active_streams() const { return streams_.size(); }

  // Submits the stream's request headers (and a body provider). Returns the stream id or -1.
  int32_t Submit(UpstreamStreamHandler* stream);
  // The stream no longer listens: RST_STREAM(CANCEL) if still open, and forget it.
  void Cancel(int32_t stream_id);
  void ResumeData(int32_t stream_id);
  // The downstream took `n` response bytes: open the upstream window by as much.
  void Consume(int32_t stream_id, size_t n);
  // No new streams; close once the last stream finishes.
  void Retire();

  void OnIo(uint32_t events) override;
  void Flush() override;

 private:
  enum class State { kConnecting, kHandshaking, kConnected, kClosed };
  static nghttp2_session_callbacks* Callbacks();
  static int OnHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                      const uint8_t*, size_t, uint8_t, void*);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame*, void*);
  static int OnFrameSend(nghttp2_session*, const nghttp2_frame*, void*);
  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int OnStreamClose(nghttp2_session*, int32_t, uint32_t, void*);
  static ssize_t ReadRequest(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                             nghttp2_data_source*, void*);

  void OnConnected();
  // Drives the TLS handshake; on success the session is connected.
  void ContinueHandshake();
  void OnReady();
  // read(2)/write(2) conventions; on a fatal TLS error `tls_error_` says why.
  ssize_t RawRead(uint8_t* buf, size_t len);
  ssize_t RawWrite(const uint8_t* buf, size_t len);
  std::string IoError(const char* what) const;
  void Close(const std::string& reason);
  void UpdateEvents();
  void SetWantOut(bool want_out);  // EPOLLOUT interest on or off
  void MaybeFinishDrain();

  Worker* worker_;
  Cluster* cluster_;
  UpstreamHost* host_;
  int fd_ = -1;
  SSL* ssl_ = nullptr;  // TLS upstream only
  std::string tls_error_;
  bool received_any_ = false;  // any byte from the endpoint since the connection came up
  State state_ = State::kConnecting;
  nghttp2_session* session_ = nullptr;
  bool goaway_ = false;
  bool retired_ = false;
  bool finishing_ = false;
  bool want_out_ = false;
  uint64_t connect_timer_ = 0;
  std::string out_;  // bytes nghttp2 produced that the socket did not take yet
  std::unordered_map<int32_t, UpstreamStreamHandler*> streams_;
};

}  // namespace podlb::proxy
