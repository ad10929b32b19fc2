#include "h2/tls.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

namespace podlb::h2 {
namespace {

constexpr unsigned char kAlpnH2[] = {2, 'h', '2'};

int SelectH2(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
             unsigned int inlen, void*) {
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, outlen, kAlpnH2, sizeof(kAlpnH2), in, inlen) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

SslCtxPtr NewContext(const SSL_METHOD* method) {
  SslCtxPtr ctx(SSL_CTX_new(method));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Partial writes and moving buffers: our output buffer may shrink and move between retries.
  SSL_CTX_set_mode(ctx.get(), SSL_MODE_ENABLE_PARTIAL_WRITE |
                                  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION);
  return ctx;
}

}  // namespace

std::string TakeTlsError(const std::string& fallback) {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return fallback;
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

absl::StatusOr<SslCtxPtr> MakeServerTlsContext(const ServerTlsFiles& files) {
  SslCtxPtr ctx = NewContext(TLS_server_method());
  if (SSL_CTX_use_certificate_chain_file(ctx.get(), files.cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx.get(), files.key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    return absl::InvalidArgumentError("TLS: cannot load " + files.cert_option + " " +
                                      files.cert_file + " / " + files.key_option + " " +
                                      files.key_file + ": " + TakeTlsError("?"));
  }
  if (SSL_CTX_check_private_key(ctx.get()) != 1) {
    return absl::InvalidArgumentError("TLS: " + files.key_option + " " + files.key_file +
                                      " is not the key of " + files.cert_option + " " +
                                      files.cert_file + ": " + TakeTlsError("?"));
  }
  if (!files.client_ca_file.empty()) {
    STACK_OF(X509_NAME)* names = SSL_load_client_CA_file(files.client_ca_file.c_str());
    if (names == nullptr ||
        SSL_CTX_load_verify_locations(ctx.get(), files.client_ca_file.c_str(), nullptr) != 1) {
      if (names != nullptr) sk_X509_NAME_pop_free(names, X509_NAME_free);
      return absl::InvalidArgumentError("TLS: cannot load " + files.client_ca_option + " " +
                                        files.client_ca_file + ": " + TakeTlsError("no certificate in it"));
    }
    SSL_CTX_set_client_CA_list(ctx.get(), names);  // takes ownership
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
  }
  SSL_CTX_set_alpn_select_cb(ctx.get(), &SelectH2, nullptr);
  return ctx;
}

absl::StatusOr<SslCtxPtr> MakeServerTlsContext(const std::string& cert_file,
                                               const std::string& key_file) {
  return MakeServerTlsContext(ServerTlsFiles{.cert_file = cert_file, .key_file = key_file});
}

absl::StatusOr<SslCtxPtr> MakeClientTlsContext(const UpstreamTlsOptions& options) {
  SslCtxPtr ctx = NewContext(TLS_client_method());
  if (options.ca_file.empty()) {
    if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
      return absl::InvalidArgumentError("upstream TLS: cannot load the system CA certificates: " +
                                        TakeTlsError("?") + " (give UpstreamTlsOptions::ca_file)");
    }
  } else if (SSL_CTX_load_verify_locations(ctx.get(), options.ca_file.c_str(), nullptr) != 1) {
    return absl::InvalidArgumentError("upstream TLS: cannot load UpstreamTlsOptions::ca_file " +
                                      options.ca_file + ": " + TakeTlsError("?"));
  }
  SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
  if (options.cert_file.empty() != options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "upstream TLS: UpstreamTlsOptions::cert_file and UpstreamTlsOptions::key_file go together (the client certificate "
        "and its private key, for endpoints that require mTLS)");
  }
  if (!options.cert_file.empty() &&
      (SSL_CTX_use_certificate_chain_file(ctx.get(), options.cert_file.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(ctx.get(), options.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
       SSL_CTX_check_private_key(ctx.get()) != 1)) {
    return absl::InvalidArgumentError("upstream TLS: cannot load UpstreamTlsOptions::cert_file " +
                                      options.cert_file + " / UpstreamTlsOptions::key_file " +
                                      options.key_file + ": " + TakeTlsError("?"));
  }
  SSL_CTX_set_alpn_protos(ctx.get(), kAlpnH2, sizeof(kAlpnH2));
  return ctx;
}

namespace {

// The read(2)/write(2)-style result of an SSL_read/SSL_write that returned `n` <= 0.
ssize_t FailedIo(SSL* ssl, int n, int fatal_errno, std::string* error) {
  int err = SSL_get_error(ssl, n);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
    errno = EAGAIN;
    return -1;
  }
  std::string reason = TakeTlsError("connection reset");
  if (err == SSL_ERROR_ZERO_RETURN) return 0;  // close_notify: a clean end of stream
  if (error != nullptr) *error = "TLS: " + reason;
  errno = fatal_errno;
  return -1;
}

}  // namespace

TlsHandshakeStep ContinueTlsHandshake(SSL* ssl) {
  using State = TlsHandshakeStep::State;
  int rc = SSL_do_handshake(ssl);
  if (rc == 1) {
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    return {State::kDone, std::string(reinterpret_cast<const char*>(alpn), alpn_len), ""};
  }
  int err = SSL_get_error(ssl, rc);
  if (err == SSL_ERROR_WANT_READ) return {State::kWantRead, "", ""};
  if (err == SSL_ERROR_WANT_WRITE) return {State::kWantWrite, "", ""};
  std::string reason = TakeTlsError("connection closed during the handshake");
  long verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    reason = std::string("certificate verify failed: ") + X509_verify_cert_error_string(verify);
  }
  return {State::kFailed, "", reason};
}

ssize_t TlsRead(SSL* ssl, uint8_t* buf, size_t len, std::string* error) {
  int n = SSL_read(ssl, buf, static_cast<int>(len));
  return n > 0 ? n : FailedIo(ssl, n, ECONNRESET, error);
}

ssize_t TlsWrite(SSL* ssl, const uint8_t* buf, size_t len, std::string* error) {
  int n = SSL_write(ssl, buf, static_cast<int>(len));
  if (n > 0) return n;
  ssize_t r = FailedIo(ssl, n, EPIPE, error);
  if (r == 0) errno = EPIPE;  // the peer closed: for a write that is a broken pipe, not EOF
  return r == 0 ? -1 : r;
}

}  // namespace podlb::h2
