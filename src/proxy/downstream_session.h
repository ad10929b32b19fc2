// DownstreamSession: one accepted client connection (h2c, or TLS with ALPN h2) served by an
// nghttp2 server session. Creates a ProxyStream per request stream, enforces the hostile-input
// limits (header list size, concurrent streams, handshake/idle timeouts, rapid-reset, SETTINGS
// and PING floods → GOAWAY(ENHANCE_YOUR_CALM)), and window updates are manual so a slow
// upstream slows its client. Worker thread only.
#pragma once

#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

#include <memory>
#include <string>
#include <unordered_map>

#include "proxy/event_loop.h"
#include "proxy/proxy_options.h"
#include "proxy/proxy_stream.h"

namespace podlb::proxy {

class Cluster;
class Worker;

class DownstreamSession : public IoHandler, public Flushable, public Deletable {
 public:
  // `fd` is a connected non-blocking socket (or -1 for the fuzzer, which feeds bytes by hand).
  DownstreamSession(Worker* worker, int fd, const ListenerConfig* listener, SSL* ssl);
  ~DownstreamSession() override;

  // Feeds received bytes to nghttp2. Returns false if the session must close.
  bool Receive(const uint8_t* data, size_t len);

  // Routing for a stream's :authority (or the listener's fixed service).
  Cluster* Route(std::string_view authority, std::string* error);
  Worker* worker() { return worker_; }
  nghttp2_session* session() { return session_; }
  const ProxyOptions& options() const;

  void SubmitResponse(int32_t stream_id, const HeaderBlock& headers, bool with_body);
  void SubmitTrailers(int32_t stream_id, const HeaderBlock& trailers);
  void ResumeData(int32_t stream_id);
  void ConsumeRequest(int32_t stream_id, size_t n);
  void ResetStream(int32_t stream_id, uint32_t error_code);

  // Drain: the first GOAWAY (shutdown notice), then the final one.
  void SendShutdownNotice();
  void SendFinalGoaway();
  // Periodic check (about once a second): handshake, idle and stream-idle timeouts.
  void CheckTimeouts(Clock::time_point now);
  size_t active_streams() const { return streams_.size(); }
  bool closed() const { return closed_; }

  void OnIo(uint32_t events) override;
  void Flush() override;

 private:
  static nghttp2_session_callbacks* Callbacks();
  static int OnBeginHeaders(nghttp2_session*, const nghttp2_frame*, void*);
  static int OnHeader(nghttp2_session*, const nghttp2_frame*, const uint8_t*, size_t,
                      const uint8_t*, size_t, uint8_t, void*);
  static int OnFrameRecv(nghttp2_session*, const nghttp2_frame*, void*);
  static int OnDataChunk(nghttp2_session*, uint8_t, int32_t, const uint8_t*, size_t, void*);
  static int OnStreamClose(nghttp2_session*, int32_t, uint32_t, void*);
  static ssize_t ReadResponse(nghttp2_session*, int32_t, uint8_t*, size_t, uint32_t*,
                              nghttp2_data_source*, void*);

  void Close();
  void Linger();
  void CalmDown(const char* why);
  bool CountFlood(uint32_t* counter, uint32_t limit);
  void HandleRead();
  bool HandleTlsHandshake();
  ssize_t RawRead(uint8_t* buf, size_t len);
  ssize_t RawWrite(const uint8_t* buf, size_t len);
  void UpdateEvents();

  Worker* worker_;
  int fd_;
  const ListenerConfig* listener_;
  SSL* ssl_;
  bool tls_handshake_done_;
  nghttp2_session* session_ = nullptr;
  bool closed_ = false;
  bool owner_gone_ = false;
  bool calmed_ = false;     // flood detected: stop feeding input to nghttp2
  bool lingering_ = false;  // GOAWAY sent and write side shut: draining input until close
  uint64_t linger_timer_ = 0;
  bool want_out_ = false;
  bool final_goaway_sent_ = false;
  bool got_preface_ = false;
  std::string out_;
  Clock::time_point created_;
  Clock::time_point last_activity_;
  Clock::time_point flood_window_start_;
  uint32_t resets_in_window_ = 0;
  uint32_t control_frames_in_window_ = 0;
  std::unordered_map<int32_t, std::unique_ptr<ProxyStream>> streams_;
};

}  // namespace podlb::proxy
