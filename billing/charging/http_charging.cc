#include "billing/charging/http_charging.h"

#include "billing/charging/http_url.h"
#include "billing/charging/tls_client.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>
#include <vector>

namespace donagate::billing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;

namespace {

constexpr size_t kMaxResponseBody = 64 * 1024;

// What one attempt (or the last of several) produced.
struct HttpReply {
  enum class Kind { kResponse, kNotSent, kTimeoutAfterSend, kLostAfterSend };
  Kind kind = Kind::kNotSent;
  unsigned status = 0;
  std::string body;
  std::string error;
  bool reused_connection = false;
};

bool IsRetryableStatus(unsigned status) { return status >= 500 || status == 408 || status == 429; }

struct Exchange {
  http::verb method = http::verb::post;
  std::string target;
  std::string body;
  int attempts = 0;
  bool stale_retry_used = false;
  std::function<void(HttpReply)> done;  // runs on the backend strand
};

std::optional<Json> ParseJson(const std::string& body) {
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  return j;
}

std::string JsonString(const std::optional<Json>& j, const char* field) {
  if (!j) return {};
  auto it = j->find(field);
  if (it == j->end() || !it->is_string()) return {};
  return it->get<std::string>();
}

std::string Describe(const HttpReply& reply, const std::optional<Json>& j) {
  std::string d = "HTTP " + std::to_string(reply.status);
  std::string err = JsonString(j, "error");
  if (!err.empty()) d += ": " + err.substr(0, 200);
  return d;
}

ChargeResult TransportResult(const HttpReply& reply) {
  switch (reply.kind) {
    case HttpReply::Kind::kNotSent:
      return ChargeResult::Of(ChargeOutcome::kUnavailable, "not sent: " + reply.error, true);
    case HttpReply::Kind::kTimeoutAfterSend:
      return ChargeResult::Of(ChargeOutcome::kUnknown, "timeout after the request was sent", true);
    case HttpReply::Kind::kLostAfterSend:
      return ChargeResult::Of(ChargeOutcome::kUnknown, "connection lost after the request was sent: " + reply.error, true);
    case HttpReply::Kind::kResponse:
      break;
  }
  return ChargeResult::Of(ChargeOutcome::kUnknown, "internal: not a transport failure", true);
}

// Reads a stored result body ({"result": "...", "reference": "..."}) shared by POST and GET.
std::optional<ChargeResult> ResultFromBody(const std::optional<Json>& j) {
  std::string result = JsonString(j, "result");
  if (result == "charged") {
    std::string reference = JsonString(j, "reference");
    if (reference.empty()) return std::nullopt;
    return ChargeResult::Charged(reference);
  }
  if (result == "insufficient_funds") return ChargeResult::Of(ChargeOutcome::kInsufficientFunds, JsonString(j, "error"));
  if (result == "barred") return ChargeResult::Of(ChargeOutcome::kSubscriberBarred, JsonString(j, "error"));
  if (result == "rejected") return ChargeResult::Of(ChargeOutcome::kRejected, JsonString(j, "error"));
  return std::nullopt;
}

ChargeResult MapChargeReply(const HttpReply& reply) {
  if (reply.kind != HttpReply::Kind::kResponse) return TransportResult(reply);
  std::optional<Json> j = ParseJson(reply.body);
  const unsigned s = reply.status;
  if (s == 200) {
    std::optional<ChargeResult> r = ResultFromBody(j);
    if (r && r->outcome == ChargeOutcome::kCharged) return *r;
    return ChargeResult::Of(ChargeOutcome::kUnknown, "HTTP 200 without a charged result and reference", true);
  }
  if (s == 402) return ChargeResult::Of(ChargeOutcome::kInsufficientFunds, Describe(reply, j));
  if (s == 403 && JsonString(j, "result") == "barred") {
    return ChargeResult::Of(ChargeOutcome::kSubscriberBarred, Describe(reply, j));
  }
  if (s == 409) return ChargeResult::Of(ChargeOutcome::kRejected, "idempotency key conflict: " + Describe(reply, j));
  if (s == 408 || s == 429) return ChargeResult::Of(ChargeOutcome::kUnavailable, Describe(reply, j), true);
  if (s >= 500) return ChargeResult::Of(ChargeOutcome::kUnknown, Describe(reply, j), true);
  return ChargeResult::Of(ChargeOutcome::kRejected, Describe(reply, j));
}

// A Status answer is trusted only when it is explicit; anything else keeps the key unknown
// (a 401 from a misconfigured token must not turn a maybe-charged key into "rejected").
ChargeResult MapStatusReply(const HttpReply& reply) {
  if (reply.kind == HttpReply::Kind::kNotSent) return TransportResult(reply);
  if (reply.kind != HttpReply::Kind::kResponse) {
    ChargeResult r = TransportResult(reply);
    r.outcome = ChargeOutcome::kUnknown;
    return r;
  }
  std::optional<Json> j = ParseJson(reply.body);
  if (reply.status == 200) {
    if (std::optional<ChargeResult> r = ResultFromBody(j)) return *r;
    return ChargeResult::Of(ChargeOutcome::kUnknown, "HTTP 200 with an unrecognised status body", true);
  }
  if (reply.status == 404 && JsonString(j, "result") == "not_found") {
    return ChargeResult::Of(ChargeOutcome::kNotFound, "backend never saw the key");
  }
  if (reply.status == 408 || reply.status == 429) {
    return ChargeResult::Of(ChargeOutcome::kUnavailable, Describe(reply, j), true);
  }
  return ChargeResult::Of(ChargeOutcome::kUnknown, "status query failed: " + Describe(reply, j),
                          reply.status >= 500);
}

RefundResult MapRefundReply(const HttpReply& reply) {
  switch (reply.kind) {
    case HttpReply::Kind::kNotSent:
      return RefundResult{RefundOutcome::kUnavailable, "not sent: " + reply.error, true};
    case HttpReply::Kind::kTimeoutAfterSend:
    case HttpReply::Kind::kLostAfterSend:
      return RefundResult{RefundOutcome::kUnknown, "no answer after the refund was sent", true};
    case HttpReply::Kind::kResponse:
      break;
  }
  std::optional<Json> j = ParseJson(reply.body);
  if (reply.status == 200 && JsonString(j, "result") == "refunded") return RefundResult{RefundOutcome::kRefunded, {}, false};
  if (reply.status == 404 && JsonString(j, "result") == "not_found") {
    return RefundResult{RefundOutcome::kNotFound, Describe(reply, j), false};
  }
  if (reply.status >= 500) return RefundResult{RefundOutcome::kUnknown, Describe(reply, j), true};
  if (reply.status == 408 || reply.status == 429) return RefundResult{RefundOutcome::kUnavailable, Describe(reply, j), true};
  if (reply.status == 200) return RefundResult{RefundOutcome::kUnknown, "HTTP 200 without result refunded", true};
  return RefundResult{RefundOutcome::kRejected, Describe(reply, j), false};
}

}  // namespace

// ---------------------------------------------------------------------------------------------

class Connection {
 public:
  using Done = std::function<void(HttpReply, bool reusable)>;
  virtual ~Connection() = default;
  virtual void Run(std::shared_ptr<Exchange> exchange, Done done) = 0;
  virtual void Close() = 0;
};

class HttpChargingBackend::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, HttpChargingOptions options, HttpUrl url)
      : executor_(executor),
        strand_(asio::make_strand(executor)),
        options_(std::move(options)),
        url_(std::move(url)),
        name_("http:" + options_.operator_name),
        ssl_ctx_(ssl::context::tls_client) {
    if (options_.server_name.empty()) options_.server_name = url_.host;
    if (options_.max_concurrency < 1) options_.max_concurrency = 1;
    if (options_.retries < 0) options_.retries = 0;
  }

  bool InitTls(std::string* error) {
    if (!url_.tls) return true;
    return ConfigureTlsClient(ssl_ctx_, {.verify = options_.tls_verify, .ca_file = options_.ca_file, .cert_file = {}, .key_file = {}}, "charging",
                              error);
  }

  const std::string& name() const { return name_; }
  const HttpChargingOptions& options() const { return options_; }
  const HttpUrl& url() const { return url_; }
  ssl::context& ssl_ctx() { return ssl_ctx_; }
  asio::strand<asio::any_io_executor>& strand() { return strand_; }
  asio::any_io_executor executor() const { return executor_; }

  void Submit(std::shared_ptr<Exchange> exchange) {
    asio::post(strand_, [self = shared_from_this(), exchange = std::move(exchange)]() mutable {
      if (self->closed_) {
        self->Finish(exchange, HttpReply{HttpReply::Kind::kNotSent, 0, {}, "backend shut down", false});
        return;
      }
      if (self->active_ < static_cast<size_t>(self->options_.max_concurrency)) {
        ++self->active_;
        self->Attempt(std::move(exchange));
      } else if (self->queue_.size() >= self->options_.max_queue) {
        self->Finish(exchange, HttpReply{HttpReply::Kind::kNotSent, 0, {}, "request queue full", false});
      } else {
        self->queue_.push_back(std::move(exchange));
      }
      self->PublishGauges();
    });
  }

  void Shutdown() {
    asio::post(strand_, [self = shared_from_this()] {
      self->closed_ = true;
      for (auto& c : self->idle_) c->Close();
      self->idle_.clear();
    });
  }

  HttpChargingBackend::Stats stats() const {
    HttpChargingBackend::Stats s;
    s.requests = requests_.load();
    s.retries = retries_.load();
    s.timeouts = timeouts_.load();
    s.connections_opened = connections_opened_.load();
    s.in_flight = in_flight_.load();
    s.queued = queued_.load();
    return s;
  }

  void CountConnectionOpened() { ++connections_opened_; }

 private:
  std::shared_ptr<Connection> NewConnection();

  void Attempt(std::shared_ptr<Exchange> exchange) {
    ++exchange->attempts;
    ++requests_;
    std::shared_ptr<Connection> conn;
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    } else {
      conn = NewConnection();
    }
    conn->Run(exchange, [self = shared_from_this(), conn, exchange](HttpReply reply, bool reusable) {
      // Connections complete on the strand already.
      self->OnAttemptDone(conn, exchange, std::move(reply), reusable);
    });
  }

  void OnAttemptDone(const std::shared_ptr<Connection>& conn, std::shared_ptr<Exchange> exchange, HttpReply reply,
                     bool reusable) {
    if (reusable && !closed_) {
      idle_.push_back(conn);
    } else {
      conn->Close();
    }
    if (reply.kind == HttpReply::Kind::kTimeoutAfterSend) ++timeouts_;
    bool retry = false;
    std::chrono::milliseconds delay{0};
    const bool attempts_left = exchange->attempts <= options_.retries;
    if (reply.kind == HttpReply::Kind::kLostAfterSend && reply.reused_connection && !exchange->stale_retry_used) {
      exchange->stale_retry_used = true;
      --exchange->attempts;  // the stale-connection retry does not use up the budget
      retry = true;
    } else if (attempts_left && !closed_ &&
               (reply.kind == HttpReply::Kind::kNotSent ||
                (reply.kind == HttpReply::Kind::kResponse && IsRetryableStatus(reply.status)))) {
      retry = true;
      delay = options_.retry_backoff * (1 << std::min(exchange->attempts - 1, 10));
    }
    if (!retry) {
      Finish(exchange, std::move(reply));
      --active_;
      if (!queue_.empty() && !closed_) {
        ++active_;
        auto next = std::move(queue_.front());
        queue_.pop_front();
        Attempt(std::move(next));
      } else if (closed_) {
        while (!queue_.empty()) {
          Finish(queue_.front(), HttpReply{HttpReply::Kind::kNotSent, 0, {}, "backend shut down", false});
          queue_.pop_front();
        }
      }
      PublishGauges();
      return;
    }
    ++retries_;
    if (delay.count() == 0) {
      Attempt(std::move(exchange));
      return;
    }
    auto timer = std::make_shared<asio::steady_timer>(strand_, delay);
    timer->async_wait([self = shared_from_this(), timer, exchange](const beast::error_code&) mutable {
      self->Attempt(std::move(exchange));
    });
  }

  void Finish(const std::shared_ptr<Exchange>& exchange, HttpReply reply) {
    exchange->done(std::move(reply));
  }

  void PublishGauges() {
    in_flight_ = active_;
    queued_ = queue_.size();
  }

  asio::any_io_executor executor_;
  asio::strand<asio::any_io_executor> strand_;
  HttpChargingOptions options_;
  HttpUrl url_;
  std::string name_;
  ssl::context ssl_ctx_;
  // Strand-only state.
  bool closed_ = false;
  size_t active_ = 0;
  std::deque<std::shared_ptr<Exchange>> queue_;
  std::vector<std::shared_ptr<Connection>> idle_;
  // Readable from any thread.
  std::atomic<uint64_t> requests_{0}, retries_{0}, timeouts_{0}, connections_opened_{0}, in_flight_{0}, queued_{0};
};

namespace {

// One keep-alive connection; owns its stream, buffer and the message being exchanged. Runs one
// exchange at a time, entirely on the backend strand.
template <class Stream>
class ConnectionT final : public Connection, public std::enable_shared_from_this<ConnectionT<Stream>> {
 public:
  template <class... StreamArgs>
  // The backend outlives its connections: idle ones are owned by it, busy ones are reached
  // only through handlers that also hold the backend.
  explicit ConnectionT(HttpChargingBackend::Impl& backend, StreamArgs&&... args)
      : backend_(backend), resolver_(backend.strand()),
        stream_(std::forward<StreamArgs>(args)...) {}

  void Run(std::shared_ptr<Exchange> exchange, Done done) override {
    exchange_ = std::move(exchange);
    done_ = std::move(done);
    reused_ = connected_;
    written_ = false;
    Lowest().expires_after(backend_.options().timeout);
    if (connected_) {
      Write();
      return;
    }
    resolver_.async_resolve(backend_.url().host, backend_.url().port,
                            [self = this->shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
                              if (ec) return self->Fail(ec, "resolve");
                              self->Lowest().async_connect(results,
                                  [self](beast::error_code ec, const tcp::endpoint&) { self->OnConnect(ec); });
                            });
  }

  void Close() override {
    beast::error_code ignored;
    Lowest().socket().shutdown(tcp::socket::shutdown_both, ignored);
    Lowest().close();
    connected_ = false;
  }

 private:
  beast::tcp_stream& Lowest() { return beast::get_lowest_layer(stream_); }

  void OnConnect(beast::error_code ec) {
    if (ec) return Fail(ec, "connect");
    backend_.CountConnectionOpened();
    Lowest().socket().set_option(tcp::no_delay(true), ec);
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      const std::string& name = backend_.options().server_name;
      if (!SSL_set_tlsext_host_name(stream_.native_handle(), name.c_str())) {
        return Fail(beast::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()), "SNI");
      }
      if (backend_.options().tls_verify) stream_.set_verify_callback(ssl::host_name_verification(name));
      stream_.async_handshake(ssl::stream_base::client, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return self->Fail(ec, "TLS handshake");
        self->connected_ = true;
        self->Write();
      });
    } else {
      connected_ = true;
      Write();
    }
  }

  void Write() {
    request_ = {};
    request_.version(11);
    request_.method(exchange_->method);
    request_.target(exchange_->target);
    request_.set(http::field::host, backend_.url().host_header);
    request_.set(http::field::user_agent, "donagate/" DONAGATE_VERSION);
    request_.set(http::field::accept, "application/json");
    if (!backend_.options().bearer_token.empty()) {
      request_.set(http::field::authorization, "Bearer " + backend_.options().bearer_token);
    }
    request_.keep_alive(true);
    if (exchange_->method != http::verb::get) {
      request_.set(http::field::content_type, "application/json");
      request_.body() = exchange_->body;
    }
    request_.prepare_payload();
    http::async_write(stream_, request_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Fail(ec, "write");
      self->written_ = true;
      self->parser_.emplace();
      self->parser_->body_limit(kMaxResponseBody);
      http::async_read(self->stream_, self->buffer_, *self->parser_,
                       [self](beast::error_code ec, size_t) { self->OnRead(ec); });
    });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Fail(ec, "read");
    HttpReply reply;
    reply.kind = HttpReply::Kind::kResponse;
    auto& response = parser_->get();
    reply.status = response.result_int();
    reply.body = std::move(response.body());
    reply.reused_connection = reused_;
    const bool reusable = response.keep_alive();
    if (!reusable) Close();
    Complete(std::move(reply), reusable);
  }

  void Fail(beast::error_code ec, const char* stage) {
    HttpReply reply;
    reply.reused_connection = reused_;
    reply.error = std::string(stage) + ": " + ec.message();
    if (!written_) {
      reply.kind = HttpReply::Kind::kNotSent;
      if (ec == beast::error::timeout) reply.error = std::string(stage) + ": timed out";
    } else if (ec == beast::error::timeout) {
      reply.kind = HttpReply::Kind::kTimeoutAfterSend;
    } else {
      reply.kind = HttpReply::Kind::kLostAfterSend;
    }
    Close();
    Complete(std::move(reply), false);
  }

  void Complete(HttpReply reply, bool reusable) {
    Lowest().expires_never();
    auto done = std::move(done_);
    exchange_.reset();
    done(std::move(reply), reusable);
  }

  HttpChargingBackend::Impl& backend_;
  tcp::resolver resolver_;
  Stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> request_;
  std::optional<http::response_parser<http::string_body>> parser_;
  std::shared_ptr<Exchange> exchange_;
  Done done_;
  bool connected_ = false;
  bool reused_ = false;
  bool written_ = false;
};

}  // namespace

std::shared_ptr<Connection> HttpChargingBackend::Impl::NewConnection() {
  if (url_.tls) {
    return std::make_shared<ConnectionT<beast::ssl_stream<beast::tcp_stream>>>(*this, strand_, ssl_ctx_);
  }
  return std::make_shared<ConnectionT<beast::tcp_stream>>(*this, strand_);
}

// ---------------------------------------------------------------------------------------------

std::unique_ptr<HttpChargingBackend> HttpChargingBackend::Create(asio::any_io_executor executor,
                                                                 HttpChargingOptions options, std::string* error) {
  HttpUrl url;
  if (!ParseHttpUrl("charging url", options.url, &url, error)) return nullptr;
  if (options.timeout.count() <= 0) {
    *error = "charging timeout must be positive";
    return nullptr;
  }
  auto impl = std::make_shared<Impl>(std::move(executor), std::move(options), std::move(url));
  if (!impl->InitTls(error)) return nullptr;
  return std::unique_ptr<HttpChargingBackend>(new HttpChargingBackend(std::move(impl)));
}

HttpChargingBackend::HttpChargingBackend(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpChargingBackend::~HttpChargingBackend() { impl_->Shutdown(); }

std::string_view HttpChargingBackend::Name() const { return impl_->name(); }

HttpChargingBackend::Stats HttpChargingBackend::stats() const { return impl_->stats(); }

void HttpChargingBackend::Charge(const ChargeRequest& request, ChargeCallback done) {
  auto executor = impl_->executor();
  if (std::string error = ValidateChargeRequest(request); !error.empty()) {
    asio::post(executor, [done = std::move(done), error = std::move(error)] {
      done(ChargeResult::Of(ChargeOutcome::kRejected, error));
    });
    return;
  }
  auto exchange = std::make_shared<Exchange>();
  exchange->method = http::verb::post;
  exchange->target = impl_->url().path + "/v1/charges";
  exchange->body = Json{{"key", request.idempotency_key},
                        {"msisdn", request.msisdn},
                        {"amount_vnd", request.amount_vnd},
                        {"units", request.units},
                        {"campaign", request.campaign},
                        {"operator", request.operator_name}}
                       .dump();
  exchange->done = [executor, done = std::move(done)](HttpReply reply) mutable {
    asio::post(executor, [done = std::move(done), result = MapChargeReply(reply)]() mutable { done(std::move(result)); });
  };
  impl_->Submit(std::move(exchange));
}

void HttpChargingBackend::Status(const std::string& idempotency_key, ChargeCallback done) {
  auto executor = impl_->executor();
  if (!IsValidIdempotencyKey(idempotency_key)) {
    asio::post(executor, [done = std::move(done)] {
      done(ChargeResult::Of(ChargeOutcome::kRejected, "invalid idempotency key"));
    });
    return;
  }
  auto exchange = std::make_shared<Exchange>();
  exchange->method = http::verb::get;
  exchange->target = impl_->url().path + "/v1/charges/" + PercentEncode(idempotency_key);
  exchange->done = [executor, done = std::move(done)](HttpReply reply) mutable {
    asio::post(executor, [done = std::move(done), result = MapStatusReply(reply)]() mutable { done(std::move(result)); });
  };
  impl_->Submit(std::move(exchange));
}

void HttpChargingBackend::Refund(const std::string& idempotency_key, int64_t amount_vnd, RefundCallback done) {
  auto executor = impl_->executor();
  if (!IsValidIdempotencyKey(idempotency_key) || amount_vnd <= 0) {
    asio::post(executor, [done = std::move(done)] {
      done(RefundResult{RefundOutcome::kRejected, "invalid idempotency key or amount", false});
    });
    return;
  }
  auto exchange = std::make_shared<Exchange>();
  exchange->method = http::verb::post;
  exchange->target = impl_->url().path + "/v1/charges/" + PercentEncode(idempotency_key) + "/refund";
  exchange->body = Json{{"amount_vnd", amount_vnd}}.dump();
  exchange->done = [executor, done = std::move(done)](HttpReply reply) mutable {
    asio::post(executor, [done = std::move(done), result = MapRefundReply(reply)]() mutable { done(std::move(result)); });
  };
  impl_->Submit(std::move(exchange));
}

}  // namespace donagate::billing
