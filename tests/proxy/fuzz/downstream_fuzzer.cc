// libFuzzer target: arbitrary bytes into a downstream (client-facing) HTTP/2 session of the
// proxy, with the routing, limits and stream logic all live. The session has no socket (fd -1:
// output is discarded) and the registry is empty, so every call ends in a local gRPC error and
// nothing touches the network. Half the inputs get the client preface prepended, so the fuzzer
// reaches frame handling without having to discover the preface first.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/registry.h"
#include "proxy/downstream_session.h"
#include "proxy/proxy_options.h"
#include "proxy/worker.h"

namespace {

struct Fixture {
  podlb::Registry registry;
  podlb::proxy::ProxyStats stats;
  podlb::proxy::ProxyOptions options;
  podlb::proxy::ServiceBalancers balancers{registry, {.defaults = options.balancing}};
  Fixture() {
    options.listeners.push_back({.host = "127.0.0.1", .port = 0, .service = std::nullopt});
    options.max_concurrent_streams = 16;
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Fixture* fixture = new Fixture();  // lives for the whole fuzzing process
  podlb::proxy::Worker worker(0, fixture->options, fixture->registry, fixture->balancers,
                              fixture->stats,
                              /*downstream_tls=*/nullptr, /*upstream_tls=*/nullptr);
  auto session = std::make_unique<podlb::proxy::DownstreamSession>(
      worker.downstream_context(), -1, &fixture->options.listeners[0], nullptr);
  static const std::string kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
  bool with_preface = size > 0 && (data[0] & 1);
  if (with_preface) {
    session->Receive(reinterpret_cast<const uint8_t*>(kPreface.data()), kPreface.size());
    ++data;
    --size;
  }
  // Feed in a few pieces, so frame boundaries fall at arbitrary places.
  size_t offset = 0;
  while (offset < size) {
    size_t piece = std::min<size_t>(size - offset, 1 + (data[offset] % 97) * 31);
    if (!session->Receive(data + offset, piece)) break;
    session->Flush();
    offset += piece;
  }
  session->Flush();
  session.reset();
  return 0;
}
