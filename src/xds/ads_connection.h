// AdsConnection: one xDS client's HTTP/2 connection (h2c, or TLS with ALPN h2) carrying gRPC
// calls of the Aggregated Discovery Service, served by podlb's own HTTP/2 base (the proxy's
// nghttp2 + epoll H2Connection) rather than a grpc++ server.
//
// Why not grpc++: with grpc++'s callback server every push to every stream was a hand-off
// between the push thread and gRPC's threads (futex wake-ups, a combiner per connection), about
// 190-290 us of server CPU per response, so one change to a Service that 10,000 clients watch
// took 2-3 s of CPU before a client saw it, and each connection held ~48 KB of gRPC transport
// state. Here a connection is an nghttp2 session on one event loop: a response is built when the
// stream can take it (coalescing whatever changed meanwhile), written straight into the
// session's send buffer, and the loop turn writes each socket once.
//
// The gRPC protocol as ADS needs it: POST of the StreamAggregatedResources method with
// content-type application/grpc; length-prefixed messages (no compression: the response headers
// advertise identity only, and a compressed message ends the call with UNIMPLEMENTED); one
// response in flight per call; trailers carry grpc-status. Any other method is answered
// UNIMPLEMENTED (trailers only), as a gRPC server does; clients fall back from delta xDS.
// Loop thread only.
#pragma once

#include <nghttp2/nghttp2.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "h2/h2_connection.h"
#include "xds/ads_stream.h"

namespace podlb::xds {

class AdsService;
class AdsConnection;

// Limits a connection enforces on what clients send.
struct AdsConnectionLimits {
  uint32_t max_concurrent_streams = 1000;
  uint32_t max_header_list_bytes = 16 * 1024;
  // gRPC's default receive limit; a DiscoveryRequest is a few KB.
  uint32_t max_request_bytes = 4 * 1024 * 1024;
  // A connection that has sent nothing (no HTTP/2 preface) for this long is closed.
  std::chrono::milliseconds handshake_timeout{10000};
  // Past these per second, the connection ends with GOAWAY(ENHANCE_YOUR_CALM): rapid reset
  // (CVE-2023-44487) and SETTINGS/PING floods. An xDS client sends a handful of each.
  uint32_t max_resets_per_second = 200;
  uint32_t max_control_frames_per_second = 200;
};

// What connections need from the worker that accepted them. Loop thread only.
class AdsConnectionOwner {
 public:
  virtual ~AdsConnectionOwner() = default;
  // The connection closed; the owner destroys it once the loop turn ends.
  virtual void OnConnectionClosed(AdsConnection* connection) = 0;
  // A client failed its TLS handshake (wrong CA, no client certificate, not TLS at all): the
  // owner logs it, throttled, since such a client usually retries every second or so.
  virtual void OnTlsHandshakeFailed(const std::string& peer, const std::string& why) = 0;
};

class AdsConnection final : public h2::H2Connection {
 public:
  // `fd` is a connected non-blocking socket; `ssl`, when not null, an accept-state SSL on it that
  // the connection now owns. `peer` names the client in logs and /debug ("ipv4:1.2.3.4:5678").
  AdsConnection(h2::EventLoop& loop, AdsService& service, AdsConnectionOwner& owner,
                const AdsConnectionLimits& limits, int fd, SSL* ssl, std::string peer);
  ~AdsConnection() override;

  // Ends every call with UNAVAILABLE (clients keep their resources and reconnect elsewhere or
  // later) and sends GOAWAY; the connection closes once that is written.
  void Shutdown();

  bool closed() const override { return closed_; }
  void OnIo(uint32_t events) override;
  void Flush() override;

 private:
  struct Call;
  static Call* AsCall(void* stream) { return static_cast<Call*>(stream); }

  int OnBeginHeaders(const nghttp2_frame& frame) override;
  int OnHeader(void* stream, bool first_block, std::string_view name,
               std::string_view value) override;
  void OnHeadersEnd(void* stream, bool first_block, bool end_stream) override;
  void OnDataEnd(void* stream) override;
  void OnStreamData(void* stream, int32_t stream_id, const uint8_t* data, size_t len) override;
  void OnStreamClose(void* stream, int32_t stream_id, uint32_t error_code) override;
  void OnControlFrame(const nghttp2_frame& frame) override;
  ssize_t ReadBody(void* stream, uint8_t* buf, size_t len, uint32_t* flags) override;
  bool OnInput(const uint8_t* data, size_t len) override;

  // The call's request headers are complete: open its AdsStream, or answer trailers-only.
  void StartCall(Call& call);
  // Ends the call with trailers carrying `status` and `message`, after the response being sent
  // and, with `send_due`, the responses already due (a client that half-closed still gets them).
  void FinishCall(Call& call, int status, std::string message, bool send_due = false);
  void CalmDown(const char* why);
  // Whole gRPC messages in the call's input go to its stream.
  void DeliverRequests(Call& call);
  // A response may be due on the call: let nghttp2 ask ReadBody again.
  void Resume(Call& call);
  // The call's ADS stream (if it opened one) leaves the service.
  void EndStream(Call& call);
  void Close();

  AdsService& service_;
  AdsConnectionOwner& owner_;
  const AdsConnectionLimits& limits_;
  const std::string peer_;
  bool closed_ = false;
  bool owner_gone_ = false;
  bool shutting_down_ = false;
  bool calmed_ = false;
  uint64_t handshake_timer_ = 0;

  std::unordered_map<int32_t, std::unique_ptr<Call>> calls_;
};

}  // namespace podlb::xds
