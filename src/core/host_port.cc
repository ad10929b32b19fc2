#include "core/host_port.h"

#include "absl/strings/numbers.h"

namespace podlb {
namespace {

// Debian's abseil has its own string_view, so messages are put together as std::string.
absl::Status Bad(std::string_view text, const std::string& why) {
  return absl::InvalidArgumentError("\"" + std::string(text) + "\": " + why);
}

}  // namespace

absl::StatusOr<HostPort> ParseHostPort(std::string_view text) {
  const std::string kHow = "write HOST:PORT, e.g. 127.0.0.1:8080 or [::1]:8080";
  if (text.empty()) return Bad(text, "empty; " + kHow);
  HostPort out;
  std::string_view port;
  if (text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos) return Bad(text, "'[' without its ']'");
    out.host = std::string(text.substr(1, close - 1));
    if (out.host.empty()) return Bad(text, "no address between '[' and ']'");
    if (out.host.find(':') == std::string::npos)
      return Bad(text, "brackets are for IPv6 addresses; write HOST:PORT without them");
    if (close + 1 >= text.size() || text[close + 1] != ':')
      return Bad(text, "no port after ']'; " + kHow);
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos) return Bad(text, "no port; " + kHow);
    out.host = std::string(text.substr(0, colon));
    if (out.host.find(':') != std::string::npos)
      return Bad(text, "an IPv6 address goes in brackets: [" + out.host + "]:" +
                                    std::string(text.substr(colon + 1)));
    if (out.host.empty()) return Bad(text, "no host before ':'; " + kHow);
    port = text.substr(colon + 1);
  }
  uint32_t number = 0;
  // SimpleAtoi takes a sign and surrounding blanks; a port is digits only.
  if (port.empty() || port.find_first_not_of("0123456789") != std::string_view::npos ||
      !absl::SimpleAtoi(std::string(port), &number) || number > 65535)
    return Bad(text, "port \"" + std::string(port) + "\" is not a number from 0 to 65535");
  out.port = static_cast<uint16_t>(number);
  return out;
}

std::string FormatHostPort(std::string_view host, uint16_t port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out = "[" + std::string(host) + "]";
  } else {
    out = std::string(host);
  }
  return out + ":" + std::to_string(port);
}

}  // namespace podlb
