#include "xds/xds_server.h"

#include "core/logging.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/security/tls_certificate_provider.h"
#include "grpcpp/security/tls_credentials_options.h"
#include "grpcpp/server_builder.h"

namespace podlb::xds {

XdsServer::XdsServer(Registry& registry, XdsServerOptions options)
    : options_(std::move(options)),
      service_(std::make_unique<AdsService>(registry, options_.ads)) {}

XdsServer::~XdsServer() { Stop(); }

namespace {

std::shared_ptr<grpc::ServerCredentials> MakeCredentials(const XdsTlsOptions& tls) {
  if (tls.cert_file.empty()) return grpc::InsecureServerCredentials();
  std::shared_ptr<grpc::experimental::CertificateProviderInterface> provider;
  if (tls.client_ca_file.empty()) {
    provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        tls.key_file, tls.cert_file, tls.reload_interval_seconds);
  } else {
    provider = std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(
        tls.key_file, tls.cert_file, tls.client_ca_file, tls.reload_interval_seconds);
  }
  grpc::experimental::TlsServerCredentialsOptions options(provider);
  options.watch_identity_key_cert_pairs();
  if (!tls.client_ca_file.empty()) {
    options.watch_root_certs();
    options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  }
  return grpc::experimental::TlsServerCredentials(options);
}

}  // namespace

absl::Status XdsServer::Start() {
  if (!options_.tls.cert_file.empty() && options_.tls.key_file.empty()) {
    return absl::InvalidArgumentError(
        "xds: XdsTlsOptions::cert_file given without XdsTlsOptions::key_file; give both, or "
        "neither for plaintext");
  }
  service_->Start();
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options_.listen, MakeCredentials(options_.tls), &port_);
  builder.RegisterService(service_.get());
  // Keepalive pings from clients every few seconds are normal for xDS; accept them.
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 5000);
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MAX_PING_STRIKES, 0);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) {
    service_->Stop();
    return absl::UnavailableError("xds: cannot listen on " + options_.listen +
                                  ": address in use or not local; choose another XdsServerOptions::listen");
  }
  LogInfo("xds: serving ADS on {} (port {}, {})", options_.listen, port_,
          options_.tls.cert_file.empty() ? "plaintext"
          : options_.tls.client_ca_file.empty() ? "TLS" : "mTLS");
  return absl::OkStatus();
}

void XdsServer::Stop() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
    server_.reset();
  }
  service_->Stop();
}

}  // namespace podlb::xds
