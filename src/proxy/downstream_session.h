// DownstreamSession: one accepted client connection (h2c, or TLS with ALPN h2) served by an
// nghttp2 server session over an H2Connection. Creates a ProxyStream per request stream,
// enforces the hostile-input limits (header list size, concurrent streams, handshake/idle
// timeouts, rapid-reset, SETTINGS and PING floods → GOAWAY(ENHANCE_YOUR_CALM)), and window
// updates are manual so a slow upstream slows its client. Worker thread only.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "core/endpoint.h"
#include "h2/h2_connection.h"
#include "proxy/proxy_options.h"
#include "proxy/proxy_stats.h"
#include "proxy/proxy_stream.h"

namespace podlb::proxy {

using h2::EventLoop;
using h2::Clock;
using h2::H2Connection;

class Cluster;
class DownstreamSession;

// What downstream connections and their streams need from the worker that accepted them:
// routing, and the counts of open streams and connections it drains by. Worker thread only.
class DownstreamOwner {
 public:
  virtual ~DownstreamOwner() = default;
  // The worker's Cluster for a Service; nullptr with `error` saying why when there is none.
  virtual Cluster* ClusterForKey(const ServiceKey& key) = 0;
  virtual Cluster* ClusterForAuthority(std::string_view authority, std::string* error) = 0;
  virtual void OnStreamOpened() = 0;
  virtual void OnStreamClosed() = 0;
  // The connection closed; the owner may destroy it once the loop turn ends.
  virtual void OnDownstreamClosed(DownstreamSession* session) = 0;
};

// The worker's parts a downstream connection uses; outlives every connection.
struct DownstreamContext {
  DownstreamOwner& owner;
  EventLoop& loop;
  const ProxyOptions& options;
  ProxyStats& stats;
};

class DownstreamSession final : public H2Connection {
 public:
  // `fd` is a connected non-blocking socket (or -1 for the fuzzer, which feeds bytes by hand);
  // `ssl`, when not null, is an accept-state SSL on it that the session now owns.
  DownstreamSession(const DownstreamContext& context, int fd, const ListenerConfig* listener,
                    SSL* ssl);
  ~DownstreamSession() override;

  // Feeds received bytes to nghttp2. Returns false if the session must close.
  bool Receive(const uint8_t* data, size_t len);

  // Routing for a stream's :authority (or the listener's fixed service).
  Cluster* Route(std::string_view authority, std::string* error);
  DownstreamOwner& owner() { return context_.owner; }
  EventLoop& loop() { return context_.loop; }
  ProxyStats& stats() { return context_.stats; }
  const ProxyOptions& options() const { return context_.options; }

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
  bool closed() const override { return closed_; }

  void OnIo(uint32_t events) override;
  void Flush() override;

 private:
  static ProxyStream* AsStream(void* stream) { return static_cast<ProxyStream*>(stream); }
  int OnBeginHeaders(const nghttp2_frame& frame) override;
  int OnHeader(void* stream, bool first_block, std::string_view name,
               std::string_view value) override;
  void OnHeadersEnd(void* stream, bool first_block, bool end_stream) override;
  void OnDataEnd(void* stream) override;
  void OnStreamData(void* stream, int32_t stream_id, const uint8_t* data, size_t len) override;
  void OnControlFrame(const nghttp2_frame& frame) override;
  void OnStreamClose(void* stream, int32_t stream_id, uint32_t error_code) override;
  ssize_t ReadBody(void* stream, uint8_t* buf, size_t len, uint32_t* flags) override;
  bool OnInput(const uint8_t* data, size_t len) override { return Receive(data, len); }

  void Close();
  void Linger();
  void CalmDown(const char* why);

  const DownstreamContext& context_;
  const ListenerConfig* listener_;
  bool closed_ = false;
  bool owner_gone_ = false;
  bool calmed_ = false;     // flood detected: stop feeding input to nghttp2
  bool lingering_ = false;  // GOAWAY sent and write side shut: draining input until close
  uint64_t linger_timer_ = 0;
  bool final_goaway_sent_ = false;
  bool got_preface_ = false;
  Clock::time_point created_;
  Clock::time_point last_activity_;
  std::unordered_map<int32_t, std::unique_ptr<ProxyStream>> streams_;
};

}  // namespace podlb::proxy
