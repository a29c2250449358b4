// donagate-console's HTTP(S) listener: Boost.Beast, one thread per connection (the handlers
// block on PostgreSQL), at most `max_connections` at once (further accepts are closed), a
// deadline per request (slow senders are closed), request bodies limited to `max_body_bytes`
// (413 beyond; uploads are spooled to disk and have their own limit). Streamed responses (exports) go out chunked. TLS when a certificate is given.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "console/app.h"

namespace donagate::console {

struct ServerOptions {
  std::string listen = "127.0.0.1:9480";  // loopback unless told otherwise; port 0 picks one
  std::string tls_cert_file;              // PEM chain; with tls_key_file enables TLS
  std::string tls_key_file;
  size_t max_body_bytes = 1024 * 1024;  // form bodies
  // Uploads (POST to a path in ConsoleApp::kSpooledPaths): the body goes to a file under
  // spool_dir as it arrives (HttpRequest::body_file, removed after the request), at most
  // max_upload_bytes (413 with a page saying the limit beyond).
  size_t max_upload_bytes = 64 * 1024 * 1024;
  std::string spool_dir = "/tmp";
  int max_connections = 32;
  int request_timeout_seconds = 30;
};

class Server {
 public:
  Server(ServerOptions options, ConsoleApp& app);
  ~Server();
  // Binds and starts accepting on a background thread; false with *error on failure.
  bool Start(std::string* error);
  void Stop();
  uint16_t port() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace donagate::console
