// HTTP/1.1 framing for the API-server stand-in. Deliberately small: the clients are kubectl,
// client-go, the Python client and libcurl, all of which send well-formed requests; anything
// else gets a clear 4xx and the connection closes.
#include "sandbox/apiserver/http_connection.h"

#include <openssl/err.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>

#include "fmt/format.h"

namespace podlb::sandbox {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return std::string(s.substr(b, e - b));
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(std::string_view text, bool plus_is_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%' && i + 2 < text.size() && HexValue(text[i + 1]) >= 0 &&
        HexValue(text[i + 2]) >= 0) {
      out.push_back(static_cast<char>(HexValue(text[i + 1]) * 16 + HexValue(text[i + 2])));
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string HttpReason(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 400:
      return "Bad Request";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 406:
      return "Not Acceptable";
    case 409:
      return "Conflict";
    case 410:
      return "Gone";
    case 413:
      return "Request Entity Too Large";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    case 504:
      return "Gateway Timeout";
    default:
      return "Unknown";
  }
}

std::string HttpRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? "" : it->second;
}

std::string HttpRequest::Query(const std::string& name) const {
  auto it = query.find(name);
  return it == query.end() ? "" : it->second;
}

bool HttpRequest::QueryBool(const std::string& name) const {
  std::string value = Query(name);
  return value == "1" || value == "t" || value == "T" || value == "true" || value == "TRUE" ||
         value == "True";
}

HttpConnection::HttpConnection(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}

HttpConnection::~HttpConnection() {
  if (ssl_ != nullptr) {
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  ::close(fd_);
}

absl::StatusOr<SSL*> HttpConnection::AcceptTls(int fd, SSL_CTX* ctx) {
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return absl::InternalError("SSL_new failed");
  SSL_set_fd(ssl, fd);
  int rc = SSL_accept(ssl);
  if (rc != 1) {
    char buf[256] = "handshake aborted";
    unsigned long code = ERR_get_error();
    if (code != 0) ERR_error_string_n(code, buf, sizeof buf);
    ERR_clear_error();
    SSL_free(ssl);
    return absl::UnavailableError(std::string("TLS handshake failed: ") + buf);
  }
  return ssl;
}

void HttpConnection::Shutdown() { ::shutdown(fd_, SHUT_RDWR); }

void HttpConnection::Linger() {
  constexpr size_t kMaxDrainBytes = 16 << 20;
  timeval timeout{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (ssl_ != nullptr) SSL_shutdown(ssl_);
  ::shutdown(fd_, SHUT_WR);
  size_t drained = 0;
  char buf[16384];
  while (drained < kMaxDrainBytes) {
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) break;
    drained += static_cast<size_t>(n);
  }
}

bool HttpConnection::Fill() {
  char buf[16384];
  while (true) {
    ssize_t n;
    if (ssl_ != nullptr) {
      n = SSL_read(ssl_, buf, sizeof buf);
      if (n <= 0) {
        ERR_clear_error();
        return false;
      }
    } else {
      n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
    }
    buffer_.append(buf, static_cast<size_t>(n));
    return true;
  }
}

bool HttpConnection::WriteAll(std::string_view data) {
  while (!data.empty()) {
    ssize_t n;
    if (ssl_ != nullptr) {
      n = SSL_write(ssl_, data.data(), static_cast<int>(data.size()));
      if (n <= 0) {
        ERR_clear_error();
        return false;
      }
    } else {
      n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

HttpConnection::ReadResult HttpConnection::ReadRequest(HttpRequest* request, std::string* error) {
  *request = HttpRequest();
  size_t header_end;
  size_t separator = 4;
  while (true) {
    header_end = buffer_.find("\r\n\r\n");
    if (header_end == std::string::npos) {
      header_end = buffer_.find("\n\n");
      separator = 2;
    } else {
      separator = 4;
    }
    if (header_end != std::string::npos) break;
    if (buffer_.size() > kMaxHeaderBytes) {
      *error = fmt::format("request headers exceed {} bytes", kMaxHeaderBytes);
      return ReadResult::kHeadersTooLarge;
    }
    if (!Fill()) {
      if (buffer_.find_first_not_of("\r\n") == std::string::npos) return ReadResult::kClosed;
      *error = "the connection closed in the middle of the request headers";
      return ReadResult::kBadRequest;
    }
  }
  if (header_end > kMaxHeaderBytes) {
    *error = fmt::format("request headers exceed {} bytes", kMaxHeaderBytes);
    return ReadResult::kHeadersTooLarge;
  }
  std::string head = buffer_.substr(0, header_end);
  buffer_.erase(0, header_end + separator);
  // Tolerate blank lines before a request (RFC 9112 section 2.2).
  head.erase(0, head.find_first_not_of("\r\n"));

  size_t line_end = head.find('\n');
  std::string request_line = Trim(head.substr(0, line_end));
  size_t sp1 = request_line.find(' ');
  size_t sp2 = sp1 == std::string::npos ? sp1 : request_line.find(' ', sp1 + 1);
  if (sp2 == std::string::npos || request_line.find(' ', sp2 + 1) != std::string::npos) {
    *error = "malformed request line";
    return ReadResult::kBadRequest;
  }
  request->method = request_line.substr(0, sp1);
  request->target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  std::string version = request_line.substr(sp2 + 1);
  bool method_ok =
      !request->method.empty() && std::all_of(request->method.begin(), request->method.end(),
                                              [](char c) { return c >= 'A' && c <= 'Z'; });
  if (!method_ok || request->target.empty() || request->target[0] != '/' ||
      (version != "HTTP/1.1" && version != "HTTP/1.0")) {
    *error = "malformed request line";
    return ReadResult::kBadRequest;
  }
  request->keep_alive = version == "HTTP/1.1";

  size_t pos = line_end == std::string::npos ? head.size() : line_end + 1;
  while (pos < head.size()) {
    size_t end = head.find('\n', pos);
    if (end == std::string::npos) end = head.size();
    std::string line = head.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) continue;
    size_t colon = line.find(':');
    if (colon == std::string::npos || colon == 0) {
      *error = "malformed header line";
      return ReadResult::kBadRequest;
    }
    request->headers[Lower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
  }
  std::string connection = Lower(request->Header("connection"));
  if (connection == "close") request->keep_alive = false;
  if (connection == "keep-alive") request->keep_alive = true;

  size_t q = request->target.find('?');
  request->path = PercentDecode(request->target.substr(0, q), false);
  if (q != std::string::npos) {
    std::string_view query(request->target);
    query.remove_prefix(q + 1);
    while (!query.empty()) {
      size_t amp = query.find('&');
      std::string_view pair = query.substr(0, amp);
      size_t eq = pair.find('=');
      std::string key = PercentDecode(pair.substr(0, eq), true);
      std::string value =
          eq == std::string_view::npos ? "" : PercentDecode(pair.substr(eq + 1), true);
      request->query.emplace(key, value);
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  ReadResult result = ReadResult::kOk;
  if (!ReadBody(request, error, &result)) return result;
  return ReadResult::kOk;
}

bool HttpConnection::ReadBody(HttpRequest* request, std::string* error, ReadResult* result) {
  auto need = [&](size_t n) {
    while (buffer_.size() < n) {
      if (!Fill()) return false;
    }
    return true;
  };
  if (Lower(request->Header("transfer-encoding")).find("chunked") != std::string::npos) {
    while (true) {
      size_t line_end;
      while ((line_end = buffer_.find("\r\n")) == std::string::npos) {
        if (buffer_.size() > 1024 || !Fill()) {
          *error = "malformed chunked request body";
          *result = ReadResult::kBadRequest;
          return false;
        }
      }
      size_t size = 0;
      std::string size_text = buffer_.substr(0, buffer_.find_first_of(";\r"));
      if (size_text.empty() || size_text.size() > 8) {
        *error = "malformed chunk size in request body";
        *result = ReadResult::kBadRequest;
        return false;
      }
      for (char c : size_text) {
        if (HexValue(c) < 0) {
          *error = "malformed chunk size in request body";
          *result = ReadResult::kBadRequest;
          return false;
        }
        size = size * 16 + static_cast<size_t>(HexValue(c));
      }
      buffer_.erase(0, line_end + 2);
      if (request->body.size() + size > kMaxBodyBytes) {
        *error = fmt::format("request body exceeds {} bytes", kMaxBodyBytes);
        *result = ReadResult::kBodyTooLarge;
        return false;
      }
      if (!need(size + 2)) {
        *error = "the connection closed in the middle of the request body";
        *result = ReadResult::kBadRequest;
        return false;
      }
      request->body.append(buffer_, 0, size);
      buffer_.erase(0, size + 2);
      if (size == 0) return true;  // trailers are not supported; the last chunk ends the body
    }
  }
  std::string length_text = request->Header("content-length");
  if (length_text.empty()) return true;
  if (length_text.size() > 12 || !std::all_of(length_text.begin(), length_text.end(),
                                              [](char c) { return c >= '0' && c <= '9'; })) {
    *error = "malformed Content-Length";
    *result = ReadResult::kBadRequest;
    return false;
  }
  size_t length = std::stoull(length_text);
  if (length > kMaxBodyBytes) {
    *error = fmt::format("request body of {} bytes exceeds the limit of {} bytes", length,
                         kMaxBodyBytes);
    *result = ReadResult::kBodyTooLarge;
    return false;
  }
  if (!need(length)) {
    *error = "the connection closed in the middle of the request body";
    *result = ReadResult::kBadRequest;
    return false;
  }
  request->body = buffer_.substr(0, length);
  buffer_.erase(0, length);
  return true;
}

bool HttpConnection::WriteResponse(int code, const std::string& content_type,
                                   const std::string& body, bool keep_alive) {
  std::string head = fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-cache, "
      "private\r\n{}\r\n",
      code, HttpReason(code), content_type, body.size(), keep_alive ? "" : "Connection: close\r\n");
  return WriteAll(head + body);
}

bool HttpConnection::BeginChunked(int code, const std::string& content_type) {
  return WriteAll(fmt::format(
      "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nTransfer-Encoding: chunked\r\nCache-Control: "
      "no-cache, private\r\n\r\n",
      code, HttpReason(code), content_type));
}

bool HttpConnection::WriteChunk(std::string_view data) {
  if (data.empty()) return true;
  return WriteAll(fmt::format("{:x}\r\n", data.size()) + std::string(data) + "\r\n");
}

bool HttpConnection::EndChunked() { return WriteAll("0\r\n\r\n"); }

}  // namespace podlb::sandbox
