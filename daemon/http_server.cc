#include "daemon/http_server.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <prometheus/text_serializer.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <optional>
#include <utility>
#include <vector>

#include "daemon/logging.h"

namespace donagate::daemon {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

constexpr std::string_view kMetricsContentType = "text/plain; version=0.0.4; charset=utf-8";
constexpr std::string_view kJson = "application/json";
constexpr std::string_view kText = "text/plain; charset=utf-8";

std::array<unsigned char, 32> Sha256(std::string_view data) {
  std::array<unsigned char, 32> digest{};
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest.data(), &len, EVP_sha256(), nullptr);
  return digest;
}

// Compares digests, so neither the token's content nor its length shows in the timing.
bool TokenMatches(std::string_view presented, const std::array<unsigned char, 32>& expected_digest) {
  const auto digest = Sha256(presented);
  return CRYPTO_memcmp(digest.data(), expected_digest.data(), digest.size()) == 0;
}

std::string_view PathOf(std::string_view target) {
  const size_t q = target.find('?');
  return q == std::string_view::npos ? target : target.substr(0, q);
}

bool IsLinkNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}

std::string JsonEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 2);
  out.push_back('"');
  for (char c : text) {
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\r': out.append("\\r"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out.append(buf);
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string ErrorJson(std::string_view message) {
  return "{\"ok\":false,\"message\":" + JsonEscape(message) + "}";
}

http::status StatusFor(AdminResult::Code code) {
  switch (code) {
    case AdminResult::Code::kOk: return http::status::ok;
    case AdminResult::Code::kNotFound: return http::status::not_found;
    case AdminResult::Code::kConflict: return http::status::conflict;
    case AdminResult::Code::kInvalid: return http::status::bad_request;
    case AdminResult::Code::kUnavailable: return http::status::service_unavailable;
  }
  return http::status::internal_server_error;
}

std::string_view ResultName(AdminResult::Code code) {
  switch (code) {
    case AdminResult::Code::kOk: return "ok";
    case AdminResult::Code::kNotFound: return "not_found";
    case AdminResult::Code::kConflict: return "conflict";
    case AdminResult::Code::kInvalid: return "invalid";
    case AdminResult::Code::kUnavailable: return "unavailable";
  }
  return "error";
}

enum class ListenerKind { kMain, kAdmin };

}  // namespace

bool ParseListenAddress(const std::string& text, std::string* host, uint16_t* port) {
  std::string_view host_part;
  std::string_view port_part;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    host_part = std::string_view(text).substr(1, close - 1);
    port_part = std::string_view(text).substr(close + 2);
  } else {
    const size_t colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) return false;
    host_part = std::string_view(text).substr(0, colon);
    port_part = std::string_view(text).substr(colon + 1);
  }
  if (host_part.empty() || port_part.empty()) return false;
  unsigned value = 0;
  const auto [end, ec] = std::from_chars(port_part.data(), port_part.data() + port_part.size(), value);
  if (ec != std::errc() || end != port_part.data() + port_part.size() || value > 65535) return false;
  *host = std::string(host_part);
  *port = static_cast<uint16_t>(value);
  return true;
}

// Shared by the listeners and every connection; connections keep it alive while they run.
class HttpServer::Impl : public std::enable_shared_from_this<HttpServer::Impl> {
 public:
  Impl(asio::io_context& io, HttpServerOptions options, HttpServerHandlers handlers)
      : io_(io),
        options_(std::move(options)),
        handlers_(std::move(handlers)),
        token_digest_(Sha256(options_.admin_token)),
        http_log_(Logger("http")),
        admin_log_(Logger("admin")) {}

  bool Start(std::string* error);
  void Stop();
  uint16_t port() const { return main_port_.load(); }
  uint16_t admin_port() const { return admin_port_.load(); }

  // Builds the answer to one parsed request. Runs on the connection's strand.
  Response Handle(ListenerKind kind, const Request& request, const std::string& remote);

  const HttpServerOptions& options() const { return options_; }
  bool stopped() const { return stopped_.load(); }
  const std::shared_ptr<spdlog::logger>& http_log() const { return http_log_; }

 private:
  class Listener;

  Response HandleMain(const Request& request, std::string_view path);
  Response HandleAdmin(const Request& request, std::string_view path, const std::string& remote);
  Response Dispatch(const Request& request, AdminAction action, std::string_view link,
                    const std::string& remote, const std::function<AdminResult()>& call);

  asio::io_context& io_;
  HttpServerOptions options_;
  HttpServerHandlers handlers_;
  std::array<unsigned char, 32> token_digest_;
  std::shared_ptr<spdlog::logger> http_log_;
  std::shared_ptr<spdlog::logger> admin_log_;
  std::atomic<bool> stopped_{false};
  std::atomic<uint16_t> main_port_{0};
  std::atomic<uint16_t> admin_port_{0};
  std::shared_ptr<Listener> main_listener_;
  std::shared_ptr<Listener> admin_listener_;
};

namespace {

Response MakeResponse(const Request& request, http::status status, std::string_view content_type,
                      std::string body) {
  Response response{status, request.version()};
  response.set(http::field::server, "donagated");
  response.set(http::field::content_type, content_type);
  response.set(http::field::cache_control, "no-store");
  response.keep_alive(request.keep_alive());
  response.body() = std::move(body);
  response.prepare_payload();
  return response;
}

// One accepted connection: owns the socket, the buffer and the parser; lives on its strand.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(tcp::socket socket, std::shared_ptr<HttpServer::Impl> server, ListenerKind kind)
      : stream_(std::move(socket)), server_(std::move(server)), kind_(kind) {
    beast::error_code ec;
    const auto endpoint = stream_.socket().remote_endpoint(ec);
    remote_ = ec ? "unknown" : endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
    remote_ip_ = ec ? "unknown" : endpoint.address().to_string();
  }

  void Run() {
    asio::dispatch(stream_.get_executor(), beast::bind_front_handler(&Connection::ReadRequest, shared_from_this()));
  }

  // Closes the socket from any thread.
  void Close() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
      self->stream_.close();
    });
  }

 private:
  void ReadRequest() {
    if (server_->stopped()) return;
    parser_.emplace();
    parser_->header_limit(static_cast<std::uint32_t>(server_->options().max_request_bytes));
    parser_->body_limit(server_->options().max_request_bytes);
    // One deadline for the whole request: a sender dribbling bytes cannot hold the connection.
    stream_.expires_after(server_->options().request_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     beast::bind_front_handler(&Connection::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof || ec == asio::error::bad_descriptor) {
      return Shutdown();
    }
    if (ec) {
      const bool too_large = ec == http::error::body_limit || ec == http::error::header_limit ||
                             ec == http::error::buffer_overflow;
      server_->http_log()->warn("event=bad_request remote={} error={}", remote_ip_,
                                Quote(ec.message()));
      Request dummy;
      dummy.version(11);
      dummy.keep_alive(false);
      auto response = MakeResponse(dummy, too_large ? http::status::payload_too_large : http::status::bad_request,
                                   kText, too_large ? "request too large\n" : "malformed request\n");
      return Write(std::move(response), /*close=*/true);
    }
    Request request = parser_->release();
    Response response = server_->Handle(kind_, request, remote_);
    const bool close = !response.keep_alive();
    Write(std::move(response), close);
  }

  void Write(Response response, bool close) {
    response_ = std::make_shared<Response>(std::move(response));
    if (close) response_->keep_alive(false);
    stream_.expires_after(server_->options().request_timeout);
    http::async_write(stream_, *response_,
                      [self = shared_from_this(), close](beast::error_code ec, std::size_t) {
                        self->response_.reset();
                        if (ec || close) return self->Shutdown();
                        self->ReadRequest();
                      });
  }

  void Shutdown() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<Response> response_;
  std::shared_ptr<HttpServer::Impl> server_;
  ListenerKind kind_;
  std::string remote_;
  std::string remote_ip_;
};

}  // namespace

// Accepts connections for one address; runs on its own strand, so its list of connections
// needs no lock.
class HttpServer::Impl::Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(asio::io_context& io, std::shared_ptr<Impl> server, ListenerKind kind)
      : io_(io), acceptor_(asio::make_strand(io)), server_(std::move(server)), kind_(kind) {}

  bool Open(const std::string& listen, uint16_t* bound_port, std::string* error) {
    std::string host;
    uint16_t port = 0;
    if (!ParseListenAddress(listen, &host, &port)) {
      *error = "listen " + listen + ": expected host:port or [v6]:port";
      return false;
    }
    beast::error_code ec;
    tcp::resolver resolver(io_);
    const auto results = resolver.resolve(host, std::to_string(port),
                                          tcp::resolver::passive | tcp::resolver::numeric_service, ec);
    if (ec || results.empty()) {
      *error = "listen " + listen + ": " + (ec ? ec.message() : "no address");
      return false;
    }
    const tcp::endpoint endpoint = results.begin()->endpoint();
    acceptor_.open(endpoint.protocol(), ec);
    if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (!ec) acceptor_.bind(endpoint, ec);
    if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
    if (!ec) *bound_port = acceptor_.local_endpoint(ec).port();
    if (ec) {
      *error = "listen " + listen + ": " + ec.message();
      beast::error_code ignored;
      acceptor_.close(ignored);
      return false;
    }
    return true;
  }

  void Run() {
    asio::dispatch(acceptor_.get_executor(), beast::bind_front_handler(&Listener::Accept, shared_from_this()));
  }

  void Close() {
    asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      self->acceptor_.close(ec);
      for (auto& weak : self->connections_) {
        if (auto connection = weak.lock()) connection->Close();
      }
      self->connections_.clear();
    });
  }

 private:
  void Accept() {
    acceptor_.async_accept(asio::make_strand(io_),
                           beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      std::erase_if(connections_, [](const std::weak_ptr<Connection>& c) { return c.expired(); });
      if (static_cast<int>(connections_.size()) >= server_->options().max_connections) {
        server_->http_log()->warn("event=connection_refused reason=too_many_connections limit={}",
                                  server_->options().max_connections);
        beast::error_code ignored;
        socket.close(ignored);
      } else {
        auto connection = std::make_shared<Connection>(std::move(socket), server_, kind_);
        connections_.push_back(connection);
        connection->Run();
      }
    } else {
      server_->http_log()->warn("event=accept_failed error={}", Quote(ec.message()));
    }
    Accept();
  }

  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::shared_ptr<Impl> server_;
  ListenerKind kind_;
  std::vector<std::weak_ptr<Connection>> connections_;
};

bool HttpServer::Impl::Start(std::string* error) {
  std::string local_error;
  if (error == nullptr) error = &local_error;
  if (main_listener_ || stopped_) {
    *error = "http server: Start called twice or after Stop";
    return false;
  }
  if (handlers_.registry == nullptr) {
    *error = "http server: no metrics registry";
    return false;
  }
  if (options_.admin_enabled && options_.admin_token.empty()) {
    *error = "admin enabled without a token";
    return false;
  }
  auto main = std::make_shared<Listener>(io_, shared_from_this(), ListenerKind::kMain);
  uint16_t port = 0;
  if (!main->Open(options_.listen, &port, error)) return false;
  std::shared_ptr<Listener> admin;
  uint16_t admin_port = 0;
  if (options_.admin_enabled) {
    admin = std::make_shared<Listener>(io_, shared_from_this(), ListenerKind::kAdmin);
    if (!admin->Open(options_.admin_listen, &admin_port, error)) {
      main->Close();
      return false;
    }
  }
  main_listener_ = main;
  admin_listener_ = admin;
  main_port_ = port;
  admin_port_ = admin_port;
  main->Run();
  if (admin) admin->Run();
  if (options_.admin_enabled) {
    http_log_->info("event=listening listen={} port={} admin_listen={} admin_port={}", options_.listen, port,
                    options_.admin_listen, admin_port);
  } else {
    http_log_->info("event=listening listen={} port={} admin=disabled", options_.listen, port);
  }
  return true;
}

void HttpServer::Impl::Stop() {
  if (stopped_.exchange(true)) return;
  // Listeners hold this Impl; dropping our references here breaks the cycle. The posted
  // Close() keeps each listener alive until it has run.
  if (main_listener_) main_listener_->Close();
  if (admin_listener_) admin_listener_->Close();
  main_listener_.reset();
  admin_listener_.reset();
}

Response HttpServer::Impl::Handle(ListenerKind kind, const Request& request, const std::string& remote) {
  const std::string_view path = PathOf(std::string_view(request.target().data(), request.target().size()));
  if (kind == ListenerKind::kAdmin) return HandleAdmin(request, path, remote);
  return HandleMain(request, path);
}

Response HttpServer::Impl::HandleMain(const Request& request, std::string_view path) {
  const bool known = path == "/metrics" || path == "/healthz" || path == "/readyz" || path == "/status";
  if (!known) return MakeResponse(request, http::status::not_found, kText, "not found\n");
  if (request.method() != http::verb::get) {
    auto response = MakeResponse(request, http::status::method_not_allowed, kText, "use GET\n");
    response.set(http::field::allow, "GET");
    return response;
  }
  if (path == "/metrics") {
    return MakeResponse(request, http::status::ok, kMetricsContentType,
                        prometheus::TextSerializer().Serialize(handlers_.registry->Collect()));
  }
  if (path == "/healthz") return MakeResponse(request, http::status::ok, kText, "ok\n");
  if (path == "/readyz") {
    const ReadyState state = handlers_.readiness ? handlers_.readiness() : ReadyState{};
    return MakeResponse(request, state.ready() ? http::status::ok : http::status::service_unavailable,
                        kJson, ReadyJson(state));
  }
  if (!handlers_.status) {
    return MakeResponse(request, http::status::service_unavailable, kJson, ErrorJson("status not available yet"));
  }
  const StatusSnapshot snapshot = handlers_.status();
  return MakeResponse(request, http::status::ok, kJson, StatusJson(snapshot, std::chrono::system_clock::now()));
}

Response HttpServer::Impl::HandleAdmin(const Request& request, std::string_view path,
                                       const std::string& remote) {
  const auto auth = request[http::field::authorization];
  constexpr std::string_view kBearer = "Bearer ";
  const std::string_view auth_view(auth.data(), auth.size());
  if (auth_view.size() <= kBearer.size() || auth_view.substr(0, kBearer.size()) != kBearer ||
      !TokenMatches(auth_view.substr(kBearer.size()), token_digest_)) {
    // Rate-limited by the sink (identical lines); the remote IP without port keeps them identical.
    admin_log_->warn("event=admin_unauthorized remote={} path={}", remote.substr(0, remote.rfind(':')),
                     Quote(std::string(path.substr(0, 64))));
    auto response = MakeResponse(request, http::status::unauthorized, kJson, ErrorJson("missing or wrong bearer token"));
    response.set(http::field::www_authenticate, "Bearer realm=\"donagate-admin\"");
    return response;
  }

  const auto post_only = [&](auto&& handler) -> Response {
    if (request.method() != http::verb::post) {
      auto response = MakeResponse(request, http::status::method_not_allowed, kJson, ErrorJson("use POST"));
      response.set(http::field::allow, "POST");
      return response;
    }
    return handler();
  };

  if (path == "/admin/charging/pause") {
    return post_only([&] {
      return Dispatch(request, AdminAction::kPauseCharging, {}, remote, [this] { return handlers_.admin->PauseCharging(); });
    });
  }
  if (path == "/admin/charging/resume") {
    return post_only([&] {
      return Dispatch(request, AdminAction::kResumeCharging, {}, remote, [this] { return handlers_.admin->ResumeCharging(); });
    });
  }
  if (path == "/admin/templates/reload") {
    return post_only([&] {
      return Dispatch(request, AdminAction::kReloadTemplates, {}, remote,
                      [this] { return handlers_.admin->ReloadTemplates(); });
    });
  }
  if (path == "/admin/links") {
    if (request.method() != http::verb::get) {
      auto response = MakeResponse(request, http::status::method_not_allowed, kJson, ErrorJson("use GET"));
      response.set(http::field::allow, "GET");
      return response;
    }
    if (handlers_.metrics) handlers_.metrics->Admin(AdminAction::kListLinks);
    if (handlers_.admin == nullptr) {
      return MakeResponse(request, http::status::service_unavailable, kJson, ErrorJson("admin actions not available yet"));
    }
    admin_log_->info("event=admin_action action=list_links remote={} result=ok", remote);
    return MakeResponse(request, http::status::ok, kJson, LinksJson(handlers_.admin->Links()));
  }
  constexpr std::string_view kLinks = "/admin/links/";
  if (path.substr(0, kLinks.size()) == kLinks) {
    const std::string_view rest = path.substr(kLinks.size());
    const size_t slash = rest.find('/');
    if (slash != std::string_view::npos) {
      const std::string_view name = rest.substr(0, slash);
      const std::string_view verb = rest.substr(slash + 1);
      if (verb == "stop" || verb == "start") {
        if (name.empty() || name.size() > 64 || !std::all_of(name.begin(), name.end(), IsLinkNameChar)) {
          return MakeResponse(request, http::status::bad_request, kJson, ErrorJson("invalid link name"));
        }
        const std::string link(name);
        if (verb == "stop") {
          return post_only([&] {
            return Dispatch(request, AdminAction::kStopLink, link, remote, [&] { return handlers_.admin->StopLink(link); });
          });
        }
        return post_only([&] {
          return Dispatch(request, AdminAction::kStartLink, link, remote, [&] { return handlers_.admin->StartLink(link); });
        });
      }
    }
  }
  return MakeResponse(request, http::status::not_found, kJson, ErrorJson("no such admin endpoint"));
}

Response HttpServer::Impl::Dispatch(const Request& request, AdminAction action, std::string_view link,
                                    const std::string& remote, const std::function<AdminResult()>& call) {
  if (handlers_.metrics) handlers_.metrics->Admin(action);
  if (handlers_.admin == nullptr) {
    admin_log_->warn("event=admin_action action={} remote={} result=unavailable", ToString(action), remote);
    return MakeResponse(request, http::status::service_unavailable, kJson,
                        ErrorJson("admin actions not available yet"));
  }
  const AdminResult result = call();
  const std::string link_kv = link.empty() ? std::string() : " " + Kv("link", link);
  if (result.ok()) {
    admin_log_->info("event=admin_action action={}{} remote={} result=ok {}", ToString(action), link_kv, remote,
                     Kv("message", result.message));
  } else {
    admin_log_->warn("event=admin_action action={}{} remote={} result={} {}", ToString(action), link_kv, remote,
                     ResultName(result.code), Kv("message", result.message));
  }
  std::string body = std::string("{\"ok\":") + (result.ok() ? "true" : "false") +
                     ",\"action\":" + JsonEscape(ToString(action)) +
                     (link.empty() ? std::string() : ",\"link\":" + JsonEscape(link)) +
                     ",\"message\":" + JsonEscape(result.message) + "}";
  return MakeResponse(request, StatusFor(result.code), kJson, std::move(body));
}

HttpServer::HttpServer(asio::io_context& io, HttpServerOptions options, HttpServerHandlers handlers)
    : impl_(std::make_shared<Impl>(io, std::move(options), std::move(handlers))) {}

HttpServer::~HttpServer() { Stop(); }

bool HttpServer::Start(std::string* error) { return impl_->Start(error); }
void HttpServer::Stop() { impl_->Stop(); }
uint16_t HttpServer::port() const { return impl_->port(); }
uint16_t HttpServer::admin_port() const { return impl_->admin_port(); }

}  // namespace donagate::daemon
