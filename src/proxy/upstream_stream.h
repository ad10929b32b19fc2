// UpstreamStreamHandler: what an UpstreamSession reports one upstream stream's events to — a
// proxied call (ProxyStream) or an active health probe (HealthChecker). Worker thread only.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/header_block.h"

namespace podlb::proxy {


class UpstreamStreamHandler {
 public:
  virtual ~UpstreamStreamHandler() = default;
  virtual const HeaderBlock& request_headers() const = 0;
  // nghttp2 data source semantics: bytes, NGHTTP2_ERR_DEFERRED, flags |= EOF.
  virtual ssize_t ReadRequest(uint8_t* buf, size_t len, uint32_t* flags) = 0;
  virtual void OnRequestHeadersSent() = 0;
  virtual void AddResponseHeader(bool trailer, std::string_view name, std::string_view value) = 0;
  virtual void OnResponseHeadersDone(bool end_stream) = 0;
  virtual void OnResponseData(const uint8_t* data, size_t len) = 0;
  virtual void OnResponseEnd() = 0;
  // The upstream stream is gone (always the last call). `connection_lost`: the whole
  // connection died; `never_connected`: it never came up.
  virtual void OnUpstreamClosed(uint32_t error_code, bool connection_lost,
                                bool never_connected) = 0;
};

}  // namespace podlb::proxy
