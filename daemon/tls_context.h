// TLS for SMPP links, and the byte stream a session reads and writes (plain TCP or TLS over TCP).
//
// Contract: TLS is off unless config::TlsConfig::enabled. When on, certificates are verified by
// default: in client mode the SMSC's chain against ca_file (or the system store) AND its name
// against server_name (or the link's host), which is also sent as SNI; in server mode,
// verify_peer demands a client certificate signed by ca_file. TLS 1.2 is the minimum.
// A context is built once per link and shared by its sessions (ssl::context is thread-safe
// for that use after construction).
#pragma once

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/strand.hpp>
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"

namespace donagate::daemon {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using Strand = asio::strand<asio::any_io_executor>;

enum class TlsRole { kClient, kServer };

// Builds the context for one link. Returns nullptr and fills *error (safe to log: file names
// and OpenSSL reasons, never key material) when a file cannot be loaded.
std::shared_ptr<ssl::context> MakeTlsContext(const config::TlsConfig& tls, TlsRole role,
                                             std::string* error);

// A connected byte stream owned by one session. Every operation must be started from the
// session's strand (the socket's executor is that strand).
class Transport {
 public:
  // Plain TCP.
  explicit Transport(tcp::socket socket);
  // TLS over TCP; call AsyncHandshake before reading or writing. For kClient, server_name is
  // sent as SNI and checked against the certificate when the context verifies peers.
  Transport(tcp::socket socket, std::shared_ptr<ssl::context> context, TlsRole role,
            const std::string& server_name, bool verify_name);

  bool is_tls() const { return tls_ != nullptr; }
  tcp::socket& socket() { return tls_ ? tls_->next_layer() : plain_; }

  template <typename Handler>
  void AsyncHandshake(Handler&& handler) {
    if (!tls_) {
      asio::post(plain_.get_executor(), [h = std::forward<Handler>(handler)]() mutable {
        h(boost::system::error_code{});
      });
      return;
    }
    tls_->async_handshake(role_ == TlsRole::kClient ? ssl::stream_base::client
                                                    : ssl::stream_base::server,
                          std::forward<Handler>(handler));
  }

  template <typename Buffer, typename Handler>
  void AsyncReadSome(const Buffer& buffer, Handler&& handler) {
    if (tls_) tls_->async_read_some(buffer, std::forward<Handler>(handler));
    else plain_.async_read_some(buffer, std::forward<Handler>(handler));
  }

  template <typename Buffers, typename Handler>
  void AsyncWrite(const Buffers& buffers, Handler&& handler) {
    if (tls_) asio::async_write(*tls_, buffers, std::forward<Handler>(handler));
    else asio::async_write(plain_, buffers, std::forward<Handler>(handler));
  }

  // Closes the TCP socket at once (no TLS close_notify: peers treat a closed SMPP socket as
  // the end of the session either way). Idempotent.
  void Close();

  // "ip:port" of the peer, or "?" when unknown.
  std::string RemoteEndpoint() const;

 private:
  tcp::socket plain_;
  std::shared_ptr<ssl::context> context_;
  std::unique_ptr<ssl::stream<tcp::socket>> tls_;
  TlsRole role_ = TlsRole::kClient;
};

}  // namespace donagate::daemon
