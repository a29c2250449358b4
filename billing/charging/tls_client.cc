#include "billing/charging/tls_client.h"

namespace donagate::billing {

namespace ssl = boost::asio::ssl;

bool ConfigureTlsClient(ssl::context& context, const TlsClientSettings& settings, const std::string& what,
                        std::string* error) {
  boost::system::error_code ec;
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                      ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
  if (!settings.ca_file.empty()) {
    context.load_verify_file(settings.ca_file, ec);
    if (ec) {
      *error = "cannot load " + what + " ca_file " + settings.ca_file + ": " + ec.message();
      return false;
    }
  } else {
    context.set_default_verify_paths(ec);
    if (ec) {
      *error = "cannot load the system trust store: " + ec.message();
      return false;
    }
  }
  if (settings.cert_file.empty() != settings.key_file.empty()) {
    *error = what + " tls_cert_file and tls_key_file go together";
    return false;
  }
  if (!settings.cert_file.empty()) {
    context.use_certificate_chain_file(settings.cert_file, ec);
    if (ec) {
      *error = "cannot load " + what + " tls_cert_file " + settings.cert_file + ": " + ec.message();
      return false;
    }
    context.use_private_key_file(settings.key_file, ssl::context::pem, ec);
    if (ec) {
      *error = "cannot load " + what + " tls_key_file " + settings.key_file + ": " + ec.message();
      return false;
    }
  }
  context.set_verify_mode(settings.verify ? ssl::verify_peer : ssl::verify_none);
  return true;
}

}  // namespace donagate::billing
