// Small gRPC-over-HTTP/2 helpers for the proxy and the ADS transport: parsing grpc-timeout and escaping
// grpc-message. Pure functions, any thread.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace podlb::h2 {

// gRPC status codes podlb produces itself.
inline constexpr int kGrpcOk = 0;
inline constexpr int kGrpcUnknown = 2;
inline constexpr int kGrpcInvalidArgument = 3;
inline constexpr int kGrpcDeadlineExceeded = 4;
inline constexpr int kGrpcResourceExhausted = 8;
inline constexpr int kGrpcUnimplemented = 12;
inline constexpr int kGrpcInternal = 13;
inline constexpr int kGrpcUnavailable = 14;

// "100m", "5S", "1H"... (the PROTOCOL-HTTP2 TimeoutValue + TimeoutUnit). nullopt if malformed.
std::optional<std::chrono::nanoseconds> ParseGrpcTimeout(std::string_view value);

// Percent-encodes a grpc-message value as the spec asks (bytes outside 0x20..0x7e and '%').
std::string PercentEncode(std::string_view message);

}  // namespace podlb::h2
