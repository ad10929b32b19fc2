// RawHttpServer: a tiny HTTP/1.1 server on 127.0.0.1:0 for tests that need a server to answer
// with exactly the bytes they script — broken JSON, a stream cut mid-line, an oversized body —
// which no real API server would send. One thread per connection; test thread only for setup.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"

namespace podlb::testing {

class RawHttpServer {
 public:
  struct Reply {
    std::string bytes;       // the whole answer, status line included
    bool hold_open = false;  // keep the connection open after writing (a quiet watch)
  };
  // Gets the request line and headers, e.g. "GET /api/v1/... HTTP/1.1\r\nHost: ...".
  using Handler = std::function<Reply(const std::string& request)>;

  explicit RawHttpServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    ::listen(listen_fd_, 64);
    socklen_t len = sizeof(addr);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }

  ~RawHttpServer() {
    stopping_ = true;
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      absl::MutexLock lock(&mu_);
      threads.swap(threads_);
    }
    for (auto& t : threads) t.join();
    ::close(listen_fd_);
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // Ends every held connection (the client sees the stream end), so the next request gets the
  // handler's current script.
  void ReleaseHeld() { release_generation_++; }

  // Requests seen whose request line contains `needle`.
  int Count(const std::string& needle) {
    absl::MutexLock lock(&mu_);
    int n = 0;
    for (const auto& r : requests_)
      if (r.find(needle) != std::string::npos) ++n;
    return n;
  }
  std::vector<std::string> Requests() {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

  static Reply Json(int status, const std::string& body) {
    return Reply{"HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n"
                 "Content-Length: " + std::to_string(body.size()) +
                 "\r\nConnection: close\r\n\r\n" + body};
  }
  // A streamed (chunked) answer; each element of `chunks` is one HTTP chunk.
  static Reply Chunked(const std::vector<std::string>& chunks, bool final_chunk, bool hold) {
    std::string out = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                      "Transfer-Encoding: chunked\r\n\r\n";
    for (const auto& c : chunks) {
      char size[32];
      snprintf(size, sizeof(size), "%zx\r\n", c.size());
      out += size + c + "\r\n";
    }
    if (final_chunk) out += "0\r\n\r\n";
    return Reply{out, hold};
  }
  // A close-delimited stream: the body ends when the server closes.
  static Reply Stream(const std::string& body, bool hold) {
    return Reply{"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" +
                     body,
                 hold};
  }

 private:
  void AcceptLoop() {
    while (!stopping_) {
      pollfd p{listen_fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) continue;
      absl::MutexLock lock(&mu_);
      threads_.emplace_back([this, fd] { Serve(fd); });
    }
  }

  void Serve(int fd) {
    std::string request;
    char buf[4096];
    while (request.find("\r\n\r\n") == std::string::npos && !stopping_) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      ssize_t n = ::read(fd, buf, sizeof(buf));
      if (n <= 0) break;
      request.append(buf, static_cast<size_t>(n));
    }
    if (request.find("\r\n\r\n") == std::string::npos) {
      ::close(fd);
      return;
    }
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(request);
    }
    const int generation = release_generation_;
    Reply reply = handler_(request);
    size_t off = 0;
    while (off < reply.bytes.size()) {
      ssize_t n = ::send(fd, reply.bytes.data() + off, reply.bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    // Hold until the client hangs up, the test releases held streams, or the server stops.
    while (reply.hold_open && !stopping_ && release_generation_ == generation) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 20) > 0) {
        ssize_t n = ::read(fd, buf, sizeof(buf));
        if (n <= 0) break;
      }
    }
    ::close(fd);
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> release_generation_{0};
  std::thread accept_thread_;
  absl::Mutex mu_;
  std::vector<std::thread> threads_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
};

}  // namespace podlb::testing
