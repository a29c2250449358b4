// The TLS client settings the charging backends share (http, carrier_billing, diameter): TLS 1.2
// or later, the peer's certificate verified against ca_file or the system trust store unless
// verification is turned off, and an optional client certificate for mutual TLS.
// Host-name checks and SNI are per connection and stay with each backend.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <string>

namespace donagate::billing {

struct TlsClientSettings {
  bool verify = true;
  std::string ca_file;    // empty: system trust store
  std::string cert_file;  // client certificate chain (PEM); empty: none
  std::string key_file;   // its key (PEM); required with cert_file
};

// Configures `context`. false and *error ("cannot load <what> ca_file …") when a file is unusable.
bool ConfigureTlsClient(boost::asio::ssl::context& context, const TlsClientSettings& settings,
                        const std::string& what, std::string* error);

}  // namespace donagate::billing
