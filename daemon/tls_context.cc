#include "daemon/tls_context.h"

#include <openssl/ssl.h>

namespace donagate::daemon {

std::shared_ptr<ssl::context> MakeTlsContext(const config::TlsConfig& tls, TlsRole role,
                                             std::string* error) {
  auto context = std::make_shared<ssl::context>(
      role == TlsRole::kClient ? ssl::context::tls_client : ssl::context::tls_server);
  boost::system::error_code ec;
  context->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                       ssl::context::no_tlsv1_1 | ssl::context::single_dh_use);
  auto fail = [&](const std::string& what) -> std::shared_ptr<ssl::context> {
    if (error) *error = what + ": " + ec.message();
    return nullptr;
  };
  if (!tls.ca_file.empty()) {
    context->load_verify_file(tls.ca_file, ec);
    if (ec) return fail("cannot load ca_file " + tls.ca_file);
  } else {
    context->set_default_verify_paths(ec);
    if (ec) return fail("cannot load the system trust store");
  }
  if (!tls.cert_file.empty()) {
    context->use_certificate_chain_file(tls.cert_file, ec);
    if (ec) return fail("cannot load cert_file " + tls.cert_file);
    context->use_private_key_file(tls.key_file, ssl::context::pem, ec);
    if (ec) return fail("cannot load key_file " + tls.key_file);
  }
  if (role == TlsRole::kServer && tls.cert_file.empty()) {
    if (error) *error = "server-mode TLS needs cert_file and key_file";
    return nullptr;
  }
  if (tls.verify_peer) {
    context->set_verify_mode(role == TlsRole::kClient
                                 ? ssl::verify_peer
                                 : ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
  } else {
    context->set_verify_mode(ssl::verify_none);
  }
  return context;
}

Transport::Transport(tcp::socket socket) : plain_(std::move(socket)) {}

Transport::Transport(tcp::socket socket, std::shared_ptr<ssl::context> context, TlsRole role,
                     const std::string& server_name, bool verify_name)
    : plain_(socket.get_executor()), context_(std::move(context)), role_(role) {
  tls_ = std::make_unique<ssl::stream<tcp::socket>>(std::move(socket), *context_);
  if (role == TlsRole::kClient && !server_name.empty()) {
    // SNI; OpenSSL copies the name.
    SSL_set_tlsext_host_name(tls_->native_handle(), server_name.c_str());
    if (verify_name) tls_->set_verify_callback(ssl::host_name_verification(server_name));
  }
}

void Transport::Close() {
  boost::system::error_code ignored;
  socket().shutdown(tcp::socket::shutdown_both, ignored);
  socket().close(ignored);
}

std::string Transport::RemoteEndpoint() const {
  boost::system::error_code ec;
  const tcp::socket& s = tls_ ? tls_->next_layer() : plain_;
  auto ep = s.remote_endpoint(ec);
  if (ec) return "?";
  return ep.address().to_string() + ":" + std::to_string(ep.port());
}

}  // namespace donagate::daemon
