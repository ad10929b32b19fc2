// HttpConnection: one accepted HTTP/1.1 connection (plaintext or TLS) of the API-server
// stand-in: reads requests (bounded headers and bodies, Content-Length or chunked), writes
// responses and chunked streams. Owned and used by one connection thread; only Shutdown may be
// called from another thread (to wake a blocked read when the server stops).
#pragma once

#include <openssl/ssl.h>

#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace podlb::sandbox {

struct HttpRequest {
  std::string method;
  std::string target;                          // as sent: path and query
  std::string path;                            // percent-decoded path without the query
  std::map<std::string, std::string> query;    // decoded; the first value of each key
  std::map<std::string, std::string> headers;  // keys lower-cased
  std::string body;
  bool keep_alive = true;

  std::string Header(const std::string& lower_name) const;
  std::string Query(const std::string& name) const;
  // A boolean query parameter as Go's strconv.ParseBool reads it ("1", "t", "true", "True"...):
  // the Python client sends "True".
  bool QueryBool(const std::string& name) const;
};

class HttpConnection {
 public:
  static constexpr size_t kMaxHeaderBytes = 1 << 20;
  static constexpr size_t kMaxBodyBytes = 32 << 20;

  // Takes ownership of `fd`. With `ssl` non-null, the connection speaks TLS (handshake done).
  HttpConnection(int fd, SSL* ssl);
  ~HttpConnection();
  HttpConnection(const HttpConnection&) = delete;
  HttpConnection& operator=(const HttpConnection&) = delete;

  // Accepts a TLS session on `fd`; the caller keeps `fd` on failure.
  static absl::StatusOr<SSL*> AcceptTls(int fd, SSL_CTX* ctx);

  enum class ReadResult { kOk, kClosed, kBadRequest, kHeadersTooLarge, kBodyTooLarge };
  // Reads the next request; `error` says what was wrong with a bad one.
  ReadResult ReadRequest(HttpRequest* request, std::string* error);

  bool WriteResponse(int code, const std::string& content_type, const std::string& body,
                     bool keep_alive);
  bool BeginChunked(int code, const std::string& content_type);
  bool WriteChunk(std::string_view data);
  bool EndChunked();

  // After an error response: stops sending and reads (discards) what the client is still
  // sending, up to a bound, so closing does not reset the connection before the client has
  // read the response.
  void Linger();

  int fd() const { return fd_; }
  // Thread-safe: shuts the socket down so blocked reads and writes return.
  void Shutdown();

 private:
  bool Fill();  // reads more bytes into buffer_; false on EOF or error
  bool WriteAll(std::string_view data);
  bool ReadBody(HttpRequest* request, std::string* error, ReadResult* result);

  int fd_;
  SSL* ssl_;
  std::string buffer_;  // bytes received and not yet consumed
};

std::string HttpReason(int code);
std::string PercentDecode(std::string_view text, bool plus_is_space);

}  // namespace podlb::sandbox
