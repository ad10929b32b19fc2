// TLS for the proxy's two sides: the server context (downstream, ALPN h2) and the client context
// (upstream: CA verification, optional client certificate for mTLS, optional name check), and
// non-blocking SSL_read/SSL_write mapped to read(2)/write(2) conventions. Contexts are built once
// at start and then shared read-only by every worker; an SSL object belongs to one worker.
#pragma once

#include <openssl/ssl.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace podlb::h2 {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

struct UpstreamTlsOptions {
  bool enabled = false;
  std::string ca_file;      // verify endpoints against this CA bundle; empty: the system roots
  std::string cert_file;    // client certificate chain for mTLS (with key_file)
  std::string key_file;
  std::string server_name;  // SNI, and the name the certificate must carry; empty: chain only
};

// The files of a TLS server, and how errors name them (the options they came from).
struct ServerTlsFiles {
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;  // non-empty: mTLS, a client certificate signed by it is required
  std::string cert_option = "ProxyOptions::tls_cert_file";
  std::string key_option = "ProxyOptions::tls_key_file";
  std::string client_ca_option;
};

// Server side: serves the certificate chain and key, TLS 1.2+, ALPN h2 only; with a client CA,
// refuses the handshake of a client without a certificate that CA signed.
absl::StatusOr<SslCtxPtr> MakeServerTlsContext(const ServerTlsFiles& files);
// The proxy's downstream: no client certificates.
absl::StatusOr<SslCtxPtr> MakeServerTlsContext(const std::string& cert_file,
                                               const std::string& key_file);
// Upstream: offers ALPN h2 and verifies the endpoint's chain (and name, when given).
absl::StatusOr<SslCtxPtr> MakeClientTlsContext(const UpstreamTlsOptions& options);

// Like read(2)/write(2) on a non-blocking socket: bytes moved, 0 on a clean close (read), or -1
// with errno EAGAIN (retry on the next event) or another errno (the connection is over; then
// `error`, when given, receives OpenSSL's reason, e.g. the peer's alert).
ssize_t TlsRead(SSL* ssl, uint8_t* buf, size_t len, std::string* error = nullptr);
ssize_t TlsWrite(SSL* ssl, const uint8_t* buf, size_t len, std::string* error = nullptr);

// One step of a non-blocking handshake (either side).
struct TlsHandshakeStep {
  enum class State { kDone, kWantRead, kWantWrite, kFailed };
  State state;
  std::string alpn;   // kDone: the protocol both sides agreed on, "" if none
  std::string error;  // kFailed: why (the certificate check first, else OpenSSL's error)
};
TlsHandshakeStep ContinueTlsHandshake(SSL* ssl);

// The oldest queued OpenSSL error as text (and clears the queue); `fallback` if there is none.
std::string TakeTlsError(const std::string& fallback);

}  // namespace podlb::h2
