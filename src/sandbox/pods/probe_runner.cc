#include "sandbox/pods/probe_runner.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "core/unique_fd.h"

namespace podlb::sandbox {
namespace {

using Clock = std::chrono::steady_clock;

int MillisLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return static_cast<int>(std::max<int64_t>(left.count(), 0));
}

// A non-blocking connect bounded by `deadline`; the error text is Go's, as kubelet events show it.
absl::Status Connect(const UniqueFd& fd, const std::string& ip, uint16_t port,
                     Clock::time_point deadline) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  if (inet_pton(AF_INET, ip.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(absl::StrCat("pod IP \"", ip, "\" is not an IPv4 address"));
  }
  if (connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    return absl::OkStatus();
  }
  if (errno != EINPROGRESS) {
    return absl::UnavailableError(absl::StrCat("dial tcp ", ip, ":", port, ": connect: ",
                                               errno == ECONNREFUSED ? "connection refused"
                                                                     : strerror(errno)));
  }
  pollfd p{fd.get(), POLLOUT, 0};
  if (poll(&p, 1, MillisLeft(deadline)) <= 0) {
    return absl::DeadlineExceededError(
        absl::StrCat("dial tcp ", ip, ":", port, ": i/o timeout"));
  }
  int error = 0;
  socklen_t length = sizeof(error);
  getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &length);
  if (error != 0) {
    return absl::UnavailableError(absl::StrCat("dial tcp ", ip, ":", port, ": connect: ",
                                               error == ECONNREFUSED ? "connection refused"
                                                                     : strerror(error)));
  }
  return absl::OkStatus();
}

absl::Status HttpGet(const ProbeSpec& probe, const std::string& ip, Clock::time_point deadline) {
  const std::string url = absl::StrCat("http://", ip, ":", probe.port, probe.path);
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  if (absl::Status connected = Connect(fd, ip, probe.port, deadline); !connected.ok()) {
    return absl::Status(connected.code(),
                        absl::StrCat("Get \"", url, "\": ", connected.message()));
  }
  // The kubelet's own request line and headers.
  std::string request = absl::StrCat("GET ", probe.path, " HTTP/1.1\r\nHost: ", ip, ":", probe.port,
                                     "\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\n"
                                     "Connection: close\r\n\r\n");
  for (size_t sent = 0; sent < request.size();) {
    pollfd p{fd.get(), POLLOUT, 0};
    if (poll(&p, 1, MillisLeft(deadline)) <= 0) {
      return absl::DeadlineExceededError(absl::StrCat("Get \"", url, "\": context deadline exceeded"));
    }
    ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      return absl::UnavailableError(absl::StrCat("Get \"", url, "\": ", strerror(errno)));
    }
    if (n > 0) sent += static_cast<size_t>(n);
  }
  // Only the status line matters: "HTTP/1.1 200 OK\r\n".
  std::string answer;
  while (answer.find("\r\n") == std::string::npos) {
    pollfd p{fd.get(), POLLIN, 0};
    if (poll(&p, 1, MillisLeft(deadline)) <= 0) {
      return absl::DeadlineExceededError(absl::StrCat(
          "Get \"", url, "\": context deadline exceeded (Client.Timeout exceeded while awaiting "
          "headers)"));
    }
    char buffer[512];
    ssize_t n = read(fd.get(), buffer, sizeof(buffer));
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (n <= 0) return absl::UnavailableError(absl::StrCat("Get \"", url, "\": EOF"));
    answer.append(buffer, static_cast<size_t>(n));
  }
  int status = 0;
  size_t space = answer.find(' ');
  if (!answer.starts_with("HTTP/1.") || space == std::string::npos ||
      !absl::SimpleAtoi(answer.substr(space + 1, 3), &status)) {
    return absl::UnavailableError(
        absl::StrCat("Get \"", url, "\": net/http: HTTP/1.x transport connection broken: "
                                    "malformed HTTP response"));
  }
  if (status < 200 || status >= 400) {
    return absl::UnavailableError(absl::StrCat("HTTP probe failed with statuscode: ", status));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RunProbe(const ProbeSpec& probe, const std::string& pod_ip) {
  const Clock::time_point deadline = Clock::now() + probe.timeout;
  if (probe.kind == ProbeSpec::Kind::kHttpGet) return HttpGet(probe, pod_ip, deadline);
  UniqueFd fd(socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (fd.get() < 0) return absl::InternalError(absl::StrCat("socket: ", strerror(errno)));
  return Connect(fd, pod_ip, probe.port, deadline);
}

}  // namespace podlb::sandbox
