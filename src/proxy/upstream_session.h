// UpstreamSession: one HTTP/2 client connection (h2c, or TLS with ALPN h2 when the worker has an
// upstream TLS context) from a worker to one upstream endpoint,
// shared by every downstream stream the worker balances onto that endpoint. Honours the peer's
// SETTINGS_MAX_CONCURRENT_STREAMS (the host opens another session when full) and GOAWAY (no new
// streams, the rest finish, then the session closes). Window updates are manual: response bytes
// are consumed only once the downstream side took them. Worker thread only.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "h2/h2_connection.h"
#include "proxy/upstream_context.h"

namespace podlb::proxy {

using h2::EventLoop;
using h2::H2Connection;
using h2::UpstreamTlsOptions;
using h2::TlsHandshakeStep;

class UpstreamStreamHandler;
class Cluster;
struct UpstreamHost;

class UpstreamSession final : public H2Connection {
 public:
  // `cluster` and `host` outlive the session (the host owns it, the cluster owns the host).
  UpstreamSession(EventLoop& loop, const UpstreamConnectionConfig& config, Cluster* cluster,
                  UpstreamHost* host);
  ~UpstreamSession() override;

  // Starts a non-blocking connect. An error means the host is unreachable right now.
  bool Connect();
  // Room for a new stream: connected or connecting, no GOAWAY, below the peer's stream limit.
  bool HasCapacity() const;
  bool closed() const override { return state_ == State::kClosed; }
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
  static UpstreamStreamHandler* AsStream(void* stream) {
    return static_cast<UpstreamStreamHandler*>(stream);
  }
  int OnHeader(void* stream, bool first_block, std::string_view name,
               std::string_view value) override;
  void OnHeadersEnd(void* stream, bool first_block, bool end_stream) override;
  void OnDataEnd(void* stream) override;
  void OnStreamData(void* stream, int32_t stream_id, const uint8_t* data, size_t len) override;
  void OnControlFrame(const nghttp2_frame& frame) override;
  void OnHeadersSent(void* stream, const nghttp2_frame& frame) override;
  void OnStreamClose(void* stream, int32_t stream_id, uint32_t error_code) override;
  ssize_t ReadBody(void* stream, uint8_t* buf, size_t len, uint32_t* flags) override;
  bool OnInput(const uint8_t* data, size_t len) override;

  void OnConnected();
  // Drives the TLS handshake; on success the session is connected.
  void ContinueHandshake();
  void OnReady();
  void Close(const std::string& reason);
  void MaybeFinishDrain();

  const UpstreamConnectionConfig& config_;
  Cluster* cluster_;
  UpstreamHost* host_;
  bool received_any_ = false;  // any byte from the endpoint since the connection came up
  State state_ = State::kConnecting;
  bool goaway_ = false;
  bool retired_ = false;
  bool finishing_ = false;
  uint64_t connect_timer_ = 0;
  std::unordered_map<int32_t, UpstreamStreamHandler*> streams_;
};

}  // namespace podlb::proxy
