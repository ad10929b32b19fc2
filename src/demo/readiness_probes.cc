#include "demo/readiness_probes.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "core/unique_fd.h"
#include "net/tcp_forwarder.h"

namespace podlb::demo {
namespace {

// How often /readyz is asked while the component syncs. The answer lives in another process
// and nothing there notifies us; this is the kubelet's way, at a period fit for a demo.
constexpr auto kReadyzPeriod = std::chrono::milliseconds(20);

bool SendAll(int fd, const std::string& data) {
  for (size_t done = 0; done < data.size();) {
    ssize_t n = send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads into `out` until `enough` holds, the peer closes (false) or the deadline passes (false).
template <typename Enough>
bool ReadUntil(int fd, std::chrono::steady_clock::time_point deadline, std::string* out,
               Enough enough) {
  char buffer[4096];
  while (!enough(*out)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n <= 0) return false;
    out->append(buffer, static_cast<size_t>(n));
  }
  return true;
}

struct HttpAnswer {
  int status = 0;
  std::string body;
};

absl::StatusOr<HttpAnswer> HttpGet(const std::string& address, const std::string& path,
                                   std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  UniqueFd socket(net::ConnectTcp(address));
  if (socket.get() < 0) return absl::UnavailableError(absl::StrCat("cannot connect to ", address));
  if (!SendAll(socket.get(), absl::StrCat("GET ", path, " HTTP/1.1\r\nHost: ", address,
                                         "\r\nConnection: close\r\n\r\n"))) {
    return absl::UnavailableError(absl::StrCat("cannot send to ", address));
  }
  std::string response;
  // Connection: close: the whole answer has arrived when the server closes.
  ReadUntil(socket.get(), deadline, &response, [](const std::string&) { return false; });
  // "HTTP/1.1 200 OK\r\n…\r\n\r\nbody"
  size_t space = response.find(' ');
  HttpAnswer answer;
  if (space == std::string::npos ||
      !absl::SimpleAtoi(response.substr(space + 1, 3), &answer.status)) {
    return absl::UnavailableError(absl::StrCat("no HTTP answer from ", address, path));
  }
  size_t body = response.find("\r\n\r\n");
  if (body != std::string::npos) answer.body = response.substr(body + 4);
  return answer;
}

}  // namespace

absl::Status ExpectHttp2Server(const std::string& address, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  UniqueFd socket(net::ConnectTcp(address));
  if (socket.get() < 0) {
    return absl::UnavailableError(absl::StrCat("cannot connect to ", address));
  }
  // The client connection preface (RFC 9113 §3.4) and an empty SETTINGS frame: length 0,
  // type 0x4, flags 0, stream 0.
  std::string preface("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  preface.append(std::string("\x00\x00\x00\x04\x00\x00\x00\x00\x00", 9));
  if (!SendAll(socket.get(), preface)) {
    return absl::UnavailableError(absl::StrCat(address, " closed the connection at once"));
  }
  // The server's preface is a SETTINGS frame: the first frame header it sends has type 0x4.
  std::string answer;
  bool got =
      ReadUntil(socket.get(), deadline, &answer, [](const std::string& a) { return a.size() >= 9; });
  if (!got) {
    return absl::UnavailableError(
        absl::StrCat(address,
                     answer.empty() ? " closed the connection without an answer"
                                    : " sent less than one HTTP/2 frame",
                     " (no backend reached within ", timeout.count(), " ms)"));
  }
  if (static_cast<uint8_t>(answer[3]) != 0x4) {
    return absl::UnavailableError(
        absl::StrCat(address, " answered, but not with an HTTP/2 SETTINGS frame"));
  }
  return absl::OkStatus();
}

absl::Status WaitForReadyz(ChildProcess& child, const std::string& what,
                           const std::string& admin_address, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last = "no answer yet";
  while (true) {
    auto answer = HttpGet(admin_address, "/readyz", std::chrono::seconds(2));
    if (answer.ok() && answer->status == 200) return absl::OkStatus();
    last = answer.ok()
               ? absl::StrCat(answer->status, " ", absl::StripTrailingAsciiWhitespace(answer->body))
               : std::string(answer.status().message());
    if (std::chrono::steady_clock::now() > deadline) {
      return absl::UnavailableError(absl::StrCat(what, " was not ready within ", timeout.count(),
                                                 " ms; its /readyz said: ", last));
    }
    // Waits on the child's exit, so a crash ends the wait at once.
    if (child.WaitForExit(kReadyzPeriod)) {
      child.Stop();
      return absl::UnavailableError(
          absl::StrCat(what, " ", DescribeWaitStatus(child.wait_status()),
                       " before it was ready (see its stderr); its /readyz "
                       "last said: ",
                       last));
    }
  }
}

}  // namespace podlb::demo
