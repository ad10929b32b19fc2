#include "native_ads_client.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace podlb::bench {

using envoy::config::endpoint::v3::ClusterLoadAssignment;
using envoy::service::discovery::v3::DiscoveryRequest;
using envoy::service::discovery::v3::DiscoveryResponse;

namespace {

constexpr char kPath[] = "/envoy.service.discovery.v3.AggregatedDiscoveryService/"
                         "StreamAggregatedResources";
// Windows large enough that flow control never stalls a 200 KB ClusterLoadAssignment (nor a
// few of them queued on one connection).
constexpr int32_t kStreamWindow = 16 << 20;
constexpr int32_t kConnectionWindow = 1 << 30;
// Larger than any response here; a length past it is a corrupt frame, not a message to buffer.
constexpr uint32_t kMaxMessage = 64u << 20;
constexpr size_t kWriteChunk = 64 << 10;

}  // namespace

struct Connection;

struct Stream {
  AdsStreamCheck* check = nullptr;
  Connection* connection = nullptr;
  int32_t id = -1;
  std::string in;   // DATA received, not yet a whole gRPC message
  std::string out;  // framed requests not yet taken by nghttp2
  size_t out_offset = 0;
  bool deferred = false;  // nghttp2 is waiting for `out` to fill
  bool closed = false;
  bool answered = false;  // has had its first response (set-up pacing)
  int http_status = 0;
  int grpc_status = -1;
  std::string grpc_message;
};

struct Connection {
  NativeAdsFleet::Worker* worker = nullptr;
  int fd = -1;
  nghttp2_session* session = nullptr;
  std::vector<Stream> streams;  // sized once: nghttp2 holds pointers to them
  std::string wbuf;
  size_t woff = 0;
  bool connected = false;
  uint32_t events = 0;  // registered with epoll
  bool dead = false;
  bool in_setup = false;
  std::string protocol_error;  // nghttp2's words for the last bad frame it saw
  int unanswered = 0;
};

class NativeAdsFleet::Worker {
 public:
  Worker(NativeAdsFleet* fleet, int window) : fleet_(fleet), window_(window) {}
  ~Worker() {
    for (auto& c : connections_) Close(c.get());
    if (epoll_fd_ >= 0) close(epoll_fd_);
  }

  void Add(std::unique_ptr<Connection> c) { connections_.push_back(std::move(c)); }

  absl::Status Init(int stop_fd) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) return absl::InternalError(absl::StrCat("epoll_create1: ", strerror(errno)));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;  // the stop eventfd
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd, &ev) != 0) {
      return absl::InternalError(absl::StrCat("epoll_ctl(stop): ", strerror(errno)));
    }
    return absl::OkStatus();
  }

  void Run() {
    OpenMore();
    std::vector<epoll_event> events(256);
    for (;;) {
      int n = epoll_wait(epoll_fd_, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        // This loop is the only thing that serves its connections: they are all lost.
        const std::string reason = absl::StrCat("epoll_wait: ", strerror(errno));
        for (auto& conn : connections_) Fail(conn.get(), reason);
        return;
      }
      for (int i = 0; i < n; ++i) {
        auto* c = static_cast<Connection*>(events[i].data.ptr);
        if (c == nullptr) return;  // Stop(): the destructor closes every connection
        if (c->dead) continue;
        if (!c->connected) {
          OnConnected(c);
        } else {
          if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) OnReadable(c);
          if (!c->dead) Flush(c);
        }
        if (c->dead) Close(c);
      }
      OpenMore();
    }
  }

 private:
  // nghttp2 callbacks: `user_data` is the Connection; the stream, the stream's user data.
  static Stream* StreamOf(nghttp2_session* s, int32_t id) {
    return static_cast<Stream*>(nghttp2_session_get_stream_user_data(s, id));
  }

  static int OnHeader(nghttp2_session* s, const nghttp2_frame* frame, const uint8_t* name,
                      size_t namelen, const uint8_t* value, size_t valuelen, uint8_t,
                      void*) {
    if (frame->hd.type != NGHTTP2_HEADERS) return 0;
    Stream* st = StreamOf(s, frame->hd.stream_id);
    if (st == nullptr) return 0;
    std::string_view n(reinterpret_cast<const char*>(name), namelen);
    std::string_view v(reinterpret_cast<const char*>(value), valuelen);
    if (n == ":status") {
      st->http_status = std::atoi(std::string(v).c_str());
    } else if (n == "grpc-status") {
      st->grpc_status = std::atoi(std::string(v).c_str());
    } else if (n == "grpc-message") {
      st->grpc_message = std::string(v);
    }
    return 0;
  }

  static int OnData(nghttp2_session* s, uint8_t, int32_t id, const uint8_t* data, size_t len,
                    void* user) {
    Stream* st = StreamOf(s, id);
    if (st == nullptr || st->closed) return 0;
    Worker* w = static_cast<Connection*>(user)->worker;
    if (st->in.empty()) {
      // The common case: whole messages in this chunk, decoded where they lie.
      size_t used = w->Consume(st, data, len);
      if (!st->closed) st->in.append(reinterpret_cast<const char*>(data) + used, len - used);
    } else {
      st->in.append(reinterpret_cast<const char*>(data), len);
      size_t used =
          w->Consume(st, reinterpret_cast<const uint8_t*>(st->in.data()), st->in.size());
      if (!st->closed) st->in.erase(0, used);
    }
    return 0;
  }

  static int OnStreamClose(nghttp2_session* s, int32_t id, uint32_t error_code, void* user) {
    Stream* st = StreamOf(s, id);
    if (st == nullptr || st->closed) return 0;
    static_cast<Connection*>(user)->worker->EndStream(st, error_code);
    return 0;
  }

  // The call is over (the server ended it, or the stream closed): a failure unless the server
  // said grpc-status 0, which the grpc++ client does not count as a failure either.
  void EndStream(Stream* st, uint32_t error_code) {
    std::string reason;
    if (st->grpc_status > 0) {
      reason = absl::StrCat("grpc-status ", st->grpc_status, ": ", st->grpc_message);
    } else if (error_code != NGHTTP2_NO_ERROR) {
      reason = absl::StrCat("RST_STREAM ", nghttp2_http2_strerror(error_code));
    } else if (st->grpc_status < 0) {
      reason = absl::StrCat("stream ended without grpc-status (HTTP status ", st->http_status,
                            ")");
    }
    CloseStream(st, reason);
  }

  static int OnFrame(nghttp2_session* s, const nghttp2_frame* frame, void* user) {
    auto* c = static_cast<Connection*>(user);
    if (frame->hd.type == NGHTTP2_GOAWAY) {
      const auto& g = frame->goaway;
      std::string debug(reinterpret_cast<const char*>(g.opaque_data), g.opaque_data_len);
      c->worker->Fail(c, absl::StrCat("GOAWAY ", nghttp2_http2_strerror(g.error_code),
                                      debug.empty() ? "" : ": ", debug));
      return 0;
    }
    // The server ended the call (trailers, or trailers-only): it is over even though our half
    // of the stream is open, so close that half too.
    if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
      Stream* st = StreamOf(s, frame->hd.stream_id);
      if (st == nullptr || st->closed) return 0;
      c->worker->EndStream(st, NGHTTP2_NO_ERROR);
      nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    }
    return 0;
  }

  // A GOAWAY we send is nghttp2 rejecting what the server sent (a bad frame).
  static int OnFrameSent(nghttp2_session*, const nghttp2_frame* frame, void* user) {
    auto* c = static_cast<Connection*>(user);
    if (frame->hd.type != NGHTTP2_GOAWAY || !c->protocol_error.empty()) return 0;
    const auto& g = frame->goaway;
    c->protocol_error =
        absl::StrCat("the client closed the session with GOAWAY ",
                     nghttp2_http2_strerror(g.error_code), g.opaque_data_len ? ": " : "",
                     std::string(reinterpret_cast<const char*>(g.opaque_data), g.opaque_data_len));
    return 0;
  }

  // nghttp2 answers a bad frame itself (GOAWAY or RST_STREAM) and reports it here.
  static int OnError(nghttp2_session*, int lib_error_code, const char* msg, size_t len,
                     void* user) {
    static_cast<Connection*>(user)->protocol_error =
        absl::StrCat(std::string(msg, len), " (", nghttp2_strerror(lib_error_code), ")");
    return 0;
  }

  static ssize_t ReadRequests(nghttp2_session*, int32_t, uint8_t* buf, size_t length,
                              uint32_t*, nghttp2_data_source* source, void*) {
    auto* st = static_cast<Stream*>(source->ptr);
    size_t avail = st->out.size() - st->out_offset;
    if (avail == 0) {
      st->deferred = true;  // the stream stays open: requests come as responses do
      return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = std::min(avail, length);
    std::memcpy(buf, st->out.data() + st->out_offset, n);
    st->out_offset += n;
    if (st->out_offset == st->out.size()) {
      st->out.clear();
      st->out_offset = 0;
    }
    return static_cast<ssize_t>(n);
  }

  // Decodes the whole gRPC messages at the front of [p, p + n), checks and ACKs each; returns
  // the bytes used. A bad message fails the stream (RST_STREAM CANCEL).
  size_t Consume(Stream* st, const uint8_t* p, size_t n) {
    size_t pos = 0;
    while (n - pos >= 5) {
      uint32_t len = static_cast<uint32_t>(p[pos + 1]) << 24 |
                     static_cast<uint32_t>(p[pos + 2]) << 16 |
                     static_cast<uint32_t>(p[pos + 3]) << 8 | p[pos + 4];
      if (p[pos] != 0) {
        ResetStream(st, "compressed message (flag set; none was negotiated)");
        return pos;
      }
      if (len > kMaxMessage) {
        ResetStream(st, absl::StrCat("message length ", len, " over ", kMaxMessage));
        return pos;
      }
      if (n - pos - 5 < len) break;
      if (!response_.ParseFromArray(p + pos + 5, static_cast<int>(len))) {
        ResetStream(st, "undecodable DiscoveryResponse");
        return pos;
      }
      st->check->OnResponse(response_, len, NowNs(), &cla_);
      if (!st->answered) {
        st->answered = true;
        Answered(st->connection);
      }
      // ACK: 5-byte gRPC prefix, then the request.
      size_t start = st->out.size();
      st->out.append(5, '\0');
      if (st->check->AppendAckBytes(response_, &st->out)) {
        uint32_t m = static_cast<uint32_t>(st->out.size() - start - 5);
        st->out[start + 1] = static_cast<char>(m >> 24);
        st->out[start + 2] = static_cast<char>(m >> 16);
        st->out[start + 3] = static_cast<char>(m >> 8);
        st->out[start + 4] = static_cast<char>(m);
        Resume(st);
      } else {
        st->out.resize(start);
      }
      pos += 5 + len;
    }
    return pos;
  }

  void Resume(Stream* st) {
    if (!st->deferred) return;
    st->deferred = false;
    nghttp2_session_resume_data(st->connection->session, st->id);
  }

  void ResetStream(Stream* st, const std::string& reason) {
    nghttp2_submit_rst_stream(st->connection->session, NGHTTP2_FLAG_NONE, st->id,
                              NGHTTP2_CANCEL);
    CloseStream(st, reason);
  }

  // The stream is over; `reason` empty means not a failure.
  void CloseStream(Stream* st, const std::string& reason) {
    st->closed = true;
    st->in.clear();
    if (!reason.empty() && !fleet_->stopping_.load(std::memory_order_relaxed)) {
      fleet_->StreamFailed(reason);
    }
    if (!st->answered) {
      st->answered = true;
      Answered(st->connection);
    }
  }

  // One more stream of `c` is set up (answered or over): the window may open another.
  void Answered(Connection* c) {
    if (--c->unanswered == 0 && c->in_setup) {
      c->in_setup = false;
      --in_setup_;
    }
  }

  // The connection is lost: every stream still open on it fails with `reason`.
  void Fail(Connection* c, const std::string& reason) {
    if (c->dead) return;
    c->dead = true;
    for (Stream& st : c->streams) {
      if (!st.closed) CloseStream(&st, reason);
    }
  }

  void Close(Connection* c) {
    if (c->session) {
      nghttp2_session_del(c->session);
      c->session = nullptr;
    }
    if (c->fd >= 0) {
      close(c->fd);  // also leaves the epoll set
      c->fd = -1;
    }
    if (c->in_setup) {
      c->in_setup = false;
      --in_setup_;
    }
  }

  void OpenMore() {
    while (in_setup_ < window_ && next_ < connections_.size()) Open(connections_[next_++].get());
  }

  void Open(Connection* c) {
    c->in_setup = true;
    ++in_setup_;
    c->unanswered = static_cast<int>(c->streams.size());
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
      Fail(c, absl::StrCat("socket: ", strerror(errno)));
      Close(c);
      return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(fleet_->options_.port));
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(c->fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 &&
        errno != EINPROGRESS) {
      Fail(c, absl::StrCat("connect: ", strerror(errno)));
      Close(c);
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;  // writable = connected (or failed: SO_ERROR says)
    ev.data.ptr = c;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
      Fail(c, absl::StrCat("epoll_ctl: ", strerror(errno)));
      Close(c);
      return;
    }
    c->events = EPOLLOUT;
  }

  void OnConnected(Connection* c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      Fail(c, absl::StrCat("connect: ", strerror(err)));
      return;
    }
    c->connected = true;
    if (!StartSession(c)) return;
    Flush(c);
  }

  bool StartSession(Connection* c) {
    nghttp2_session_callbacks* cbs;
    nghttp2_session_callbacks_new(&cbs);
    nghttp2_session_callbacks_set_on_header_callback(cbs, OnHeader);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, OnData);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, OnStreamClose);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, OnFrame);
    nghttp2_session_callbacks_set_error_callback2(cbs, OnError);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, OnFrameSent);
    int rv = nghttp2_session_client_new(&c->session, cbs, c);
    nghttp2_session_callbacks_del(cbs);
    if (rv != 0) {
      Fail(c, absl::StrCat("nghttp2_session_client_new: ", nghttp2_strerror(rv)));
      return false;
    }
    nghttp2_settings_entry settings[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow},
        {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, 1 << 20},
    };
    nghttp2_submit_settings(c->session, NGHTTP2_FLAG_NONE, settings, 3);
    nghttp2_session_set_local_window_size(c->session, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
    const std::string authority = absl::StrCat("127.0.0.1:", fleet_->options_.port);
    auto nv = [](std::string_view n, std::string_view v) {
      return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                        reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(),
                        v.size(), NGHTTP2_NV_FLAG_NONE};
    };
    const nghttp2_nv headers[] = {
        nv(":method", "POST"),          nv(":scheme", "http"),
        nv(":authority", authority),    nv(":path", kPath),
        nv("content-type", "application/grpc"), nv("te", "trailers"),
        nv("user-agent", "xds_fanout-native"),
    };
    for (Stream& st : c->streams) {
      for (const DiscoveryRequest& r : st.check->subscriptions()) {
        std::string body = r.SerializeAsString();
        uint32_t m = static_cast<uint32_t>(body.size());
        char prefix[5] = {0, static_cast<char>(m >> 24), static_cast<char>(m >> 16),
                          static_cast<char>(m >> 8), static_cast<char>(m)};
        st.out.append(prefix, 5);
        st.out.append(body);
      }
      nghttp2_data_provider provider{};
      provider.source.ptr = &st;
      provider.read_callback = ReadRequests;
      st.id = nghttp2_submit_request(c->session, nullptr, headers,
                                     sizeof headers / sizeof headers[0], &provider, &st);
      if (st.id < 0) {
        CloseStream(&st, absl::StrCat("nghttp2_submit_request: ", nghttp2_strerror(st.id)));
      }
    }
    return true;
  }

  void OnReadable(Connection* c) {
    for (int round = 0; round < 4 && !c->dead; ++round) {
      ssize_t n = read(c->fd, buf_, sizeof buf_);
      if (n == 0) {
        Fail(c, "connection closed by the server");
        break;
      }
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) break;
        Fail(c, absl::StrCat("read: ", strerror(errno)));
        break;
      }
      ssize_t rv = nghttp2_session_mem_recv(c->session, buf_, static_cast<size_t>(n));
      if (rv < 0) {
        Fail(c, absl::StrCat("bad HTTP/2 from the server: ",
                             c->protocol_error.empty() ? nghttp2_strerror(static_cast<int>(rv))
                                                       : c->protocol_error));
        break;
      }
      if (static_cast<size_t>(n) < sizeof buf_) break;
    }
  }

  void Flush(Connection* c) {
    for (;;) {
      if (c->woff == c->wbuf.size()) {
        c->wbuf.clear();
        c->woff = 0;
        while (c->wbuf.size() < kWriteChunk) {
          const uint8_t* data;
          ssize_t n = nghttp2_session_mem_send(c->session, &data);
          if (n < 0) {
            Fail(c, absl::StrCat("nghttp2_session_mem_send: ",
                                 nghttp2_strerror(static_cast<int>(n))));
            return;
          }
          if (n == 0) break;
          c->wbuf.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
        }
        if (c->wbuf.empty()) break;
      }
      ssize_t n = send(c->fd, c->wbuf.data() + c->woff, c->wbuf.size() - c->woff, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) {
          Watch(c, true);
          return;
        }
        Fail(c, absl::StrCat("write: ", strerror(errno)));
        return;
      }
      c->woff += static_cast<size_t>(n);
    }
    Watch(c, false);
    if (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) {
      Fail(c, c->protocol_error.empty()
                  ? std::string("the HTTP/2 session ended")
                  : absl::StrCat("bad HTTP/2 from the server: ", c->protocol_error));
    }
  }

  // Reads always; writes only while bytes wait for the socket.
  void Watch(Connection* c, bool out) {
    uint32_t events = EPOLLIN | (out ? static_cast<uint32_t>(EPOLLOUT) : 0u);
    if (c->events == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c->fd, &ev);
    c->events = events;
  }

  NativeAdsFleet* fleet_;
  const int window_;
  int epoll_fd_ = -1;
  std::vector<std::unique_ptr<Connection>> connections_;
  size_t next_ = 0;
  int in_setup_ = 0;
  DiscoveryResponse response_;     // reused: decoding allocates less the second time
  ClusterLoadAssignment cla_;
  uint8_t buf_[256 << 10];
};

NativeAdsFleet::NativeAdsFleet(NativeAdsOptions options,
                               std::vector<std::unique_ptr<AdsStreamCheck>> streams,
                               Arrivals* arrivals)
    : options_(options), streams_(std::move(streams)), arrivals_(arrivals) {}

NativeAdsFleet::~NativeAdsFleet() { Stop(); }

absl::Status NativeAdsFleet::Start() {
  const int threads = std::max(1, options_.threads);
  const int connections = std::max(1, options_.connections);
  stop_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (stop_fd_ < 0) return absl::InternalError(absl::StrCat("eventfd: ", strerror(errno)));
  for (int t = 0; t < threads; ++t) {
    workers_.push_back(
        std::make_unique<Worker>(this, std::max(1, options_.connect_window / threads)));
    if (auto status = workers_.back()->Init(stop_fd_); !status.ok()) return status;
  }
  // Connection c belongs to worker c % threads; stream i rides connection i % connections.
  std::vector<int> per_connection(connections, 0);
  for (size_t i = 0; i < streams_.size(); ++i) ++per_connection[i % connections];
  std::vector<Connection*> by_index(connections);
  for (int c = 0; c < connections; ++c) {
    auto conn = std::make_unique<Connection>();
    conn->worker = workers_[c % threads].get();
    conn->streams.resize(per_connection[c]);
    by_index[c] = conn.get();
    workers_[c % threads]->Add(std::move(conn));
  }
  std::vector<int> filled(connections, 0);
  for (size_t i = 0; i < streams_.size(); ++i) {
    Connection* conn = by_index[i % connections];
    Stream& st = conn->streams[filled[i % connections]++];
    st.check = streams_[i].get();
    st.connection = conn;
  }
  for (auto& w : workers_) threads_.emplace_back([w = w.get()] { w->Run(); });
  return absl::OkStatus();
}

void NativeAdsFleet::Stop() {
  if (stop_fd_ < 0) return;
  stopping_.store(true);
  uint64_t one = 1;
  (void)!write(stop_fd_, &one, sizeof one);
  for (auto& t : threads_) t.join();
  threads_.clear();
  workers_.clear();  // closes the connections
  close(stop_fd_);
  stop_fd_ = -1;
}

std::string NativeAdsFleet::FirstError() const {
  absl::MutexLock lock(&mu_);
  return first_error_;
}

void NativeAdsFleet::StreamFailed(const std::string& reason) {
  arrivals_->streams_failed.fetch_add(1);
  absl::MutexLock lock(&mu_);
  if (first_error_.empty()) first_error_ = reason;
  if (reasons_.insert(reason).second) {
    std::fprintf(stderr, "xds_fanout: native client: a stream failed: %s (printed once)\n",
                 reason.c_str());
  }
}

}  // namespace podlb::bench
