#include "console/server.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <sys/socket.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <thread>

namespace donagate::console {

namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;

struct Server::Impl {
  ServerOptions opt;
  ConsoleApp& app;
  boost::asio::io_context io;
  tcp::acceptor acceptor{io};
  std::unique_ptr<ssl::context> tls;
  std::thread accept_thread;
  std::atomic<int> active{0};
  std::atomic<bool> stopping{false};

  Impl(ServerOptions o, ConsoleApp& a) : opt(std::move(o)), app(a) {}

  std::atomic<uint64_t> spool_seq{0};

  // 413 as a page a person can read (the browser shows it in place of the result).
  template <class Stream>
  void TooLarge(Stream& stream, size_t limit) {
    http::response<http::string_body> res{http::status::payload_too_large, 11};
    res.set(http::field::content_type, "text/html; charset=utf-8");
    res.set(http::field::connection, "close");
    res.body() = "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Too large</title></head><body>"
                 "<h1>413: the upload is too large</h1><p class=\"error\">The console accepts at most " +
                 std::to_string(limit / (1024 * 1024)) + " MiB (" + std::to_string(limit) +
                 " bytes) per request. Split the settlement file by day, or ask the administrator to raise the "
                 "limit (--max-upload-mib).</p><p><a href=\"/reconcile\">Back</a></p></body></html>\n";
    res.prepare_payload();
    beast::error_code ec;
    http::write(stream, res, ec);
  }

  template <class Stream>
  void Serve(Stream& stream, const std::string& remote, bool is_tls) {
    beast::flat_buffer buffer;
    while (!stopping) {
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(opt.request_timeout_seconds));
      beast::error_code ec;
      http::request_parser<http::empty_body> head;
      head.header_limit(16 * 1024);
      head.body_limit(std::max(opt.max_upload_bytes, opt.max_body_bytes));
      http::read_header(stream, buffer, head, ec);
      if (ec == http::error::body_limit) {
        TooLarge(stream, std::max(opt.max_upload_bytes, opt.max_body_bytes));
        return;
      }
      if (ec) return;
      const std::string target(head.get().target());
      const std::string path = target.substr(0, target.find('?'));
      const bool spooled = head.get().method() == http::verb::post && ConsoleApp::IsSpooledPath(path);
      const size_t limit = spooled ? opt.max_upload_bytes : opt.max_body_bytes;
      if (head.content_length() && *head.content_length() > limit) {
        TooLarge(stream, limit);  // refused before a byte of the body is read
        return;
      }
      HttpRequest in;
      http::request<http::empty_body> header_only;
      if (spooled) {
        // An upload: straight to a spool file, never held in memory.
        http::request_parser<http::file_body> parser{std::move(head)};
        parser.body_limit(opt.max_upload_bytes);
        in.body_file = opt.spool_dir + "/donagate-console-body-" + std::to_string(::getpid()) + "-" +
                       std::to_string(spool_seq.fetch_add(1)) + ".tmp";
        parser.get().body().open(in.body_file.c_str(), beast::file_mode::write, ec);
        if (ec) return;
        http::read(stream, buffer, parser, ec);
        parser.get().body().close();
        if (ec) {
          std::remove(in.body_file.c_str());
          if (ec == http::error::body_limit) TooLarge(stream, opt.max_upload_bytes);
          return;
        }
        auto msg = parser.release();
        header_only.base() = msg.base();
      } else {
        http::request_parser<http::string_body> parser{std::move(head)};
        parser.body_limit(opt.max_body_bytes);
        http::read(stream, buffer, parser, ec);
        if (ec == http::error::body_limit) {
          TooLarge(stream, opt.max_body_bytes);
          return;
        }
        if (ec) return;
        auto msg = parser.release();
        in.body = std::move(msg.body());
        header_only.base() = msg.base();
      }
      auto& req = header_only;
      in.method = std::string(req.method_string());
      in.target = std::string(req.target());
      for (auto& f : req) {
        std::string name(f.name_string());
        for (auto& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        in.headers[name] = std::string(f.value());
      }
      in.remote_addr = remote;
      in.tls = is_tls;
      struct RemoveSpool {
        const std::string& path;
        ~RemoveSpool() {
          if (!path.empty()) std::remove(path.c_str());
        }
      } remove_spool{in.body_file};
      const bool keep_alive = req.keep_alive();
      HttpResponse out = app.Handle(in);
      beast::get_lowest_layer(stream).expires_never();
      if (out.stream) {
        http::response<http::empty_body> res{static_cast<http::status>(out.status), 11};
        for (auto& [k, v] : out.headers) res.insert(k, v);
        res.chunked(true);
        res.keep_alive(false);
        http::response_serializer<http::empty_body> sr{res};
        http::write_header(stream, sr, ec);
        if (ec) return;
        out.stream([&](std::string_view chunk) {
          beast::error_code wec;
          boost::asio::write(stream, http::make_chunk(boost::asio::buffer(chunk.data(), chunk.size())), wec);
          return !wec;
        });
        boost::asio::write(stream, http::make_chunk_last(), ec);
        return;
      }
      http::response<http::string_body> res{static_cast<http::status>(out.status), 11};
      for (auto& [k, v] : out.headers) res.insert(k, v);
      if (in.method != "HEAD") res.body() = std::move(out.body);
      res.keep_alive(keep_alive);
      res.prepare_payload();
      http::write(stream, res, ec);
      if (ec || !keep_alive) return;
    }
  }

  void Connection(tcp::socket socket) {
    std::string remote;
    beast::error_code ec;
    auto ep = socket.remote_endpoint(ec);
    if (!ec) remote = ep.address().to_string();
    if (tls) {
      beast::ssl_stream<beast::tcp_stream> stream(beast::tcp_stream(std::move(socket)), *tls);
      beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(opt.request_timeout_seconds));
      stream.handshake(ssl::stream_base::server, ec);
      if (!ec) Serve(stream, remote, true);
      stream.shutdown(ec);
    } else {
      beast::tcp_stream stream(std::move(socket));
      Serve(stream, remote, false);
      stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    }
  }

  void AcceptLoop() {
    while (!stopping) {
      beast::error_code ec;
      tcp::socket socket(io);
      acceptor.accept(socket, ec);
      if (ec) {
        if (stopping) return;
        continue;
      }
      if (active >= opt.max_connections) continue;  // closed at once by the socket's destructor
      ++active;
      std::thread([this, s = std::move(socket)]() mutable {
        try {
          Connection(std::move(s));
        } catch (const std::exception&) {
        }
        --active;
      }).detach();
    }
  }
};

Server::Server(ServerOptions options, ConsoleApp& app) : impl_(std::make_unique<Impl>(std::move(options), app)) {}
Server::~Server() { Stop(); }

bool Server::Start(std::string* error) {
  auto& o = impl_->opt;
  auto colon = o.listen.rfind(':');
  if (colon == std::string::npos) {
    *error = "listen " + o.listen + ": expected host:port";
    return false;
  }
  std::string host = o.listen.substr(0, colon), port = o.listen.substr(colon + 1);
  if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
  try {
    if (!o.tls_cert_file.empty() || !o.tls_key_file.empty()) {
      impl_->tls = std::make_unique<ssl::context>(ssl::context::tls_server);
      impl_->tls->set_options(ssl::context::no_sslv2 | ssl::context::no_sslv3 | ssl::context::no_tlsv1 |
                              ssl::context::no_tlsv1_1);
      impl_->tls->use_certificate_chain_file(o.tls_cert_file);
      impl_->tls->use_private_key_file(o.tls_key_file, ssl::context::pem);
    }
    tcp::endpoint ep(boost::asio::ip::make_address(host), static_cast<uint16_t>(std::stoi(port)));
    impl_->acceptor.open(ep.protocol());
    impl_->acceptor.set_option(tcp::acceptor::reuse_address(true));
    impl_->acceptor.bind(ep);
    impl_->acceptor.listen();
  } catch (const std::exception& e) {
    *error = "listen " + o.listen + ": " + e.what();
    return false;
  }
  impl_->accept_thread = std::thread([this] { impl_->AcceptLoop(); });
  return true;
}

void Server::Stop() {
  if (impl_->stopping.exchange(true)) return;
  beast::error_code ec;
  // shutdown() wakes the blocking accept() (close() alone does not on Linux).
  ::shutdown(impl_->acceptor.native_handle(), SHUT_RDWR);
  impl_->acceptor.close(ec);
  if (impl_->accept_thread.joinable()) impl_->accept_thread.join();
}

uint16_t Server::port() const {
  beast::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

}  // namespace donagate::console
