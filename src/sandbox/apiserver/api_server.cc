// ApiServer: the listener and connection threads of the API-server stand-in. One accept thread;
// one thread per connection (the stand-in serves tests and demos, not thousands of clients);
// a WatchSupervisor that ends watches whose client hung up. Stop shuts every socket down, which
// wakes blocked reads, closes every watch, and joins every thread.
#include "sandbox/apiserver/api_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <thread>

#include "absl/synchronization/mutex.h"
#include "core/logging.h"
#include "core/sigpipe.h"
#include "fmt/format.h"
#include "sandbox/apiserver/api_handler.h"
#include "sandbox/apiserver/cert_authority.h"
#include "sandbox/apiserver/http_connection.h"
#include "sandbox/apiserver/watch_supervisor.h"

namespace podlb::sandbox {
namespace {

// Offers only http/1.1, so Go clients (kubectl) do not attempt HTTP/2.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
               unsigned int in_len, void*) {
  static const unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_len, kHttp11, sizeof kHttp11, in, in_len) ==
      OPENSSL_NPN_NEGOTIATED) {
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
  }
  return SSL_TLSEXT_ERR_NOACK;
}

absl::StatusOr<SSL_CTX*> MakeSslContext(const ServingCredentials& credentials) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return absl::InternalError("SSL_CTX_new failed");
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  BIO* cert_bio =
      BIO_new_mem_buf(credentials.cert_pem.data(), static_cast<int>(credentials.cert_pem.size()));
  X509* cert = PEM_read_bio_X509(cert_bio, nullptr, nullptr, nullptr);
  BIO_free(cert_bio);
  BIO* key_bio =
      BIO_new_mem_buf(credentials.key_pem.data(), static_cast<int>(credentials.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  bool ok = cert != nullptr && key != nullptr && SSL_CTX_use_certificate(ctx, cert) == 1 &&
            SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx) == 1;
  X509_free(cert);
  EVP_PKEY_free(key);
  if (!ok) {
    ERR_clear_error();
    SSL_CTX_free(ctx);
    return absl::InternalError("loading the generated serving certificate into OpenSSL failed");
  }
  SSL_CTX_set_alpn_select_cb(ctx, SelectAlpn, nullptr);
  return ctx;
}

}  // namespace

struct ApiServer::Impl {
  ApiServerOptions options;
  std::shared_ptr<ResourceStore> store;
  ApiCounters counters;
  std::unique_ptr<WatchSupervisor> supervisor;
  std::unique_ptr<TokenAuthenticator> authenticator;
  std::unique_ptr<RbacAuthorizer> authorizer;
  std::unique_ptr<ApiHandler> handler;
  SSL_CTX* ssl_ctx = nullptr;
  std::string ca_pem;
  int listen_fd = -1;
  uint16_t port = 0;
  std::thread accept_thread;

  struct Connection {
    int fd;  // -1 once the connection thread closed it
    bool done = false;
    std::thread thread;
  };
  absl::Mutex mu;
  std::map<uint64_t, Connection> connections ABSL_GUARDED_BY(mu);
  uint64_t next_connection ABSL_GUARDED_BY(mu) = 1;
  bool stopping ABSL_GUARDED_BY(mu) = false;

  void AcceptLoop();
  void ServeConnection(uint64_t id, int fd);
  void ReapFinishedLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

void ApiServer::Impl::ReapFinishedLocked() {
  for (auto it = connections.begin(); it != connections.end();) {
    if (it->second.done) {
      it->second.thread.join();  // already returned: does not block
      it = connections.erase(it);
    } else {
      ++it;
    }
  }
}

void ApiServer::Impl::AcceptLoop() {
  while (true) {
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    absl::MutexLock lock(&mu);
    if (stopping) {
      if (fd >= 0) ::close(fd);
      return;
    }
    ReapFinishedLocked();
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE || errno == ENFILE) continue;
      LogError("apiserver: accept on port {} failed: {}; no new connections will be served", port,
               std::strerror(errno));
      return;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint64_t id = next_connection++;
    Connection& connection = connections[id];
    connection.fd = fd;
    connection.thread = std::thread([this, id, fd] { ServeConnection(id, fd); });
  }
}

void ApiServer::Impl::ServeConnection(uint64_t id, int fd) {
  BlockSigpipeInThisThread();  // a client that vanishes mid-response must not kill us

  std::unique_ptr<HttpConnection> connection;
  if (ssl_ctx != nullptr) {
    auto ssl = HttpConnection::AcceptTls(fd, ssl_ctx);
    if (!ssl.ok()) {
      LogDebug("apiserver: {}", std::string(ssl.status().message()));
    } else {
      connection = std::make_unique<HttpConnection>(fd, *ssl);
    }
  } else {
    connection = std::make_unique<HttpConnection>(fd, nullptr);
  }
  while (connection != nullptr) {
    HttpRequest request;
    std::string error;
    auto result = connection->ReadRequest(&request, &error);
    if (result == HttpConnection::ReadResult::kClosed) break;
    if (result != HttpConnection::ReadResult::kOk) {
      int code = result == HttpConnection::ReadResult::kHeadersTooLarge ? 431
                 : result == HttpConnection::ReadResult::kBodyTooLarge  ? 413
                                                                        : 400;
      std::string reason = code == 400   ? "BadRequest"
                           : code == 413 ? "RequestEntityTooLarge"
                                         : "RequestHeaderFieldsTooLarge";
      ApiResponse response = StatusResponse(code, reason, error);
      connection->WriteResponse(code, "application/json", response.body.dump(), false);
      connection->Linger();
      break;
    }
    if (!handler->Serve(request, *connection)) break;
  }
  {
    absl::MutexLock lock(&mu);
    connections[id].fd = -1;  // Stop must not shut down a descriptor number reused elsewhere
  }
  if (connection != nullptr) {
    connection.reset();  // closes fd
  } else {
    ::close(fd);
  }
  absl::MutexLock lock(&mu);
  connections[id].done = true;
}

ApiServer::ApiServer(ApiServerOptions options, std::shared_ptr<ResourceStore> store)
    : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->store = std::move(store);
  impl_->authenticator = std::make_unique<TokenAuthenticator>(*impl_->store);
  impl_->authorizer = std::make_unique<RbacAuthorizer>(*impl_->store);
  for (const auto& token : impl_->options.tokens) {
    impl_->authenticator->AddStaticToken(
        token, UserInfo{"kubernetes-admin", {"system:masters", "system:authenticated"}});
  }
  for (const auto& token : impl_->options.forbidden_tokens) {
    impl_->authenticator->AddStaticToken(token, ServiceAccountUser("default", "podlb-forbidden"));
  }
}

ApiServer::~ApiServer() { Stop(); }

absl::Status ApiServer::Start() {
  Impl& s = *impl_;
  if (s.listen_fd >= 0) return absl::FailedPreconditionError("apiserver: already started");
  if (s.options.create_system_namespaces) {
    for (const char* name : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
      if (s.store->Get("namespaces", "", name).ok()) continue;
      nlohmann::json ns = {{"apiVersion", "v1"},
                           {"kind", "Namespace"},
                           {"metadata",
                            {{"name", name}, {"labels", {{"kubernetes.io/metadata.name", name}}}}},
                           {"spec", {{"finalizers", {"kubernetes"}}}},
                           {"status", {{"phase", "Active"}}}};
      auto created = s.store->Create("namespaces", "", ns);
      if (!created.ok() && created.status().code() != absl::StatusCode::kAlreadyExists) {
        return created.status();
      }
    }
  }
  if (s.options.tls) {
    auto credentials = GenerateServingCredentials();
    if (!credentials.ok()) return credentials.status();
    auto ctx = MakeSslContext(*credentials);
    if (!ctx.ok()) return ctx.status();
    s.ssl_ctx = *ctx;
    s.ca_pem = credentials->ca_cert_pem;
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(s.options.port);
  if (inet_pton(AF_INET, s.options.listen_address.c_str(), &addr.sin_addr) != 1) {
    return absl::InvalidArgumentError(
        fmt::format("apiserver: listen address \"{}\" is not an IPv4 address; use e.g. 127.0.0.1",
                    s.options.listen_address));
  }
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return absl::InternalError(fmt::format("apiserver: socket: {}", std::strerror(errno)));
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd, 128) != 0) {
    std::string cause = std::strerror(errno);
    ::close(fd);
    return absl::UnavailableError(fmt::format(
        "apiserver: cannot listen on {}:{}: {}; pick another port or stop what holds it",
        s.options.listen_address, s.options.port, cause));
  }
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  s.listen_fd = fd;
  s.port = ntohs(addr.sin_port);
  s.supervisor = std::make_unique<WatchSupervisor>();
  s.handler = std::make_unique<ApiHandler>(s.options, *s.store, s.counters, *s.supervisor,
                                           *s.authenticator, *s.authorizer,
                                           fmt::format("{}:{}", s.options.listen_address, s.port));
  s.accept_thread = std::thread([&s] { s.AcceptLoop(); });
  LogInfo("apiserver: serving {} on {}", s.options.tls ? "https" : "http", url());
  return absl::OkStatus();
}

void ApiServer::Stop() {
  Impl& s = *impl_;
  if (s.listen_fd < 0) return;
  {
    absl::MutexLock lock(&s.mu);
    s.stopping = true;
  }
  ::shutdown(s.listen_fd, SHUT_RDWR);  // wakes accept()
  if (s.accept_thread.joinable()) s.accept_thread.join();
  ::close(s.listen_fd);
  s.listen_fd = -1;
  s.supervisor->Stop();  // wakes every watch
  {
    absl::MutexLock lock(&s.mu);
    for (auto& [id, connection] : s.connections) {
      if (connection.fd >= 0) ::shutdown(connection.fd, SHUT_RDWR);  // wakes blocked reads
    }
  }
  // Join without the lock: finishing threads take it to mark themselves done.
  std::vector<std::thread*> threads;
  {
    absl::MutexLock lock(&s.mu);
    for (auto& [id, connection] : s.connections) threads.push_back(&connection.thread);
  }
  for (std::thread* t : threads) t->join();
  {
    absl::MutexLock lock(&s.mu);
    s.connections.clear();
  }
  if (s.ssl_ctx != nullptr) {
    SSL_CTX_free(s.ssl_ctx);
    s.ssl_ctx = nullptr;
  }
}

uint16_t ApiServer::port() const { return impl_->port; }

std::string ApiServer::url() const {
  return fmt::format("{}://{}:{}", impl_->options.tls ? "https" : "http",
                     impl_->options.listen_address, impl_->port);
}

std::string ApiServer::ca_pem() const { return impl_->ca_pem; }

ResourceStore& ApiServer::store() { return *impl_->store; }

absl::StatusOr<std::string> ApiServer::IssueServiceAccountToken(const std::string& ns,
                                                               const std::string& name,
                                                               std::chrono::seconds lifetime) {
  auto account = impl_->store->Get("serviceaccounts", ns, name);
  if (!account.ok()) return account.status();
  return impl_->authenticator->Issue(*account, lifetime).token;
}

uint64_t ApiServer::WatchesOpened(const std::string& resource) const {
  return impl_->counters.Watches(resource);
}

uint64_t ApiServer::ListsServed(const std::string& resource) const {
  return impl_->counters.Lists(resource);
}

}  // namespace podlb::sandbox
