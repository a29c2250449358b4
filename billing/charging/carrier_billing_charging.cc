#include "billing/charging/carrier_billing_charging.h"

#include "billing/charging/tls_client.h"
#include "billing/charging/http_url.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/core/detail/base64.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cmath>
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
using Clock = std::chrono::steady_clock;

namespace {

constexpr size_t kMaxResponseBody = 256 * 1024;

std::string Base64(const std::string& s) {
  std::string out(beast::detail::base64::encoded_size(s.size()), '\0');
  out.resize(beast::detail::base64::encode(out.data(), s.data(), s.size()));
  return out;
}

// What one HTTP exchange (after its transport retries) produced.
struct HttpReply {
  enum class Kind { kResponse, kNotSent, kTimeoutAfterSend, kLostAfterSend };
  Kind kind = Kind::kNotSent;
  unsigned status = 0;
  std::string body;
  std::string error;
  bool reused_connection = false;
};

struct Exchange {
  http::verb method = http::verb::get;
  std::string target;
  std::string body;
  std::string content_type = "application/json";
  std::string authorization;  // full header value; empty: none
  int attempts = 0;
  bool stale_retry_used = false;
  std::function<void(HttpReply)> done;  // runs on the strand
};

std::optional<Json> ParseJson(const std::string& body) {
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return std::nullopt;
  return j;
}

std::string Str(const Json& j, const char* field) {
  if (!j.is_object()) return {};
  auto it = j.find(field);
  if (it == j.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

// A server's free-text message may name the subscriber; details end up in logs and the
// donation's failure reason, which never carry an MSISDN. Runs of 7+ digits become "<number>".
std::string WithoutNumbers(std::string_view text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && text[j] >= '0' && text[j] <= '9') ++j;
    if (j - i >= 7) {
      if (!out.empty() && out.back() == '+') out.pop_back();
      out += "<number>";
      i = j;
    } else if (j > i) {
      out.append(text.substr(i, j - i));
      i = j;
    } else {
      out.push_back(text[i++]);
    }
  }
  return out;
}

// "HTTP 422 CARRIER_BILLING.USER_AMOUNT_THRESHOLD_OVERPASSED: message" (CAMARA ErrorInfo).
std::string Describe(const HttpReply& reply, const std::optional<Json>& j) {
  std::string d = "HTTP " + std::to_string(reply.status);
  if (j) {
    const std::string code = Str(*j, "code");
    const std::string message = Str(*j, "message");
    if (!code.empty()) d += " " + WithoutNumbers(code.substr(0, 80));
    if (!message.empty()) d += ": " + WithoutNumbers(message.substr(0, 200));
  }
  return d;
}

std::string ErrorCode(const std::optional<Json>& j) { return j ? Str(*j, "code") : std::string(); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// A keep-alive connection pool to one origin. Strand-only.

class CbConnection {
 public:
  using Done = std::function<void(HttpReply, bool reusable)>;
  virtual ~CbConnection() = default;
  virtual void Run(std::shared_ptr<Exchange> exchange, Done done) = 0;
  virtual void Close() = 0;
};

class CbPool : public std::enable_shared_from_this<CbPool> {
 public:
  CbPool(asio::strand<asio::any_io_executor> strand, HttpUrl url, ssl::context& ssl_ctx,
         const CarrierBillingOptions& options, int max_concurrency, std::atomic<uint64_t>& requests,
         std::atomic<uint64_t>& timeouts)
      : strand_(std::move(strand)), url_(std::move(url)), ssl_ctx_(ssl_ctx), options_(options),
        max_concurrency_(std::max(1, max_concurrency)), requests_(requests), timeouts_(timeouts) {}

  const HttpUrl& url() const { return url_; }
  const CarrierBillingOptions& options() const { return options_; }
  asio::strand<asio::any_io_executor>& strand() { return strand_; }

  // Strand only.
  void Submit(std::shared_ptr<Exchange> exchange) {
    if (closed_) return exchange->done(HttpReply{HttpReply::Kind::kNotSent, 0, {}, "backend shut down", false});
    if (active_ < static_cast<size_t>(max_concurrency_)) {
      ++active_;
      Attempt(std::move(exchange));
    } else {
      queue_.push_back(std::move(exchange));
    }
  }

  void Shutdown() {
    closed_ = true;
    for (auto& c : idle_) c->Close();
    idle_.clear();
  }

 private:
  std::shared_ptr<CbConnection> NewConnection();

  void Attempt(std::shared_ptr<Exchange> exchange) {
    ++exchange->attempts;
    ++requests_;
    std::shared_ptr<CbConnection> conn;
    if (!idle_.empty()) {
      conn = std::move(idle_.back());
      idle_.pop_back();
    } else {
      conn = NewConnection();
    }
    conn->Run(exchange, [self = shared_from_this(), conn, exchange](HttpReply reply, bool reusable) {
      self->OnAttemptDone(conn, exchange, std::move(reply), reusable);
    });
  }

  void OnAttemptDone(const std::shared_ptr<CbConnection>& conn, std::shared_ptr<Exchange> exchange, HttpReply reply,
                     bool reusable) {
    if (reusable && !closed_) {
      idle_.push_back(conn);
    } else {
      conn->Close();
    }
    if (reply.kind == HttpReply::Kind::kTimeoutAfterSend) ++timeouts_;
    // Only what was certainly not processed is repeated: nothing sent, or a reused keep-alive
    // connection the server had already closed (no byte of an answer; a replayed
    // clientCorrelator would be refused and then resolved by retrieval anyway).
    bool retry = false;
    std::chrono::milliseconds delay{0};
    if (reply.kind == HttpReply::Kind::kLostAfterSend && reply.reused_connection && !exchange->stale_retry_used) {
      exchange->stale_retry_used = true;
      --exchange->attempts;
      retry = true;
    } else if (reply.kind == HttpReply::Kind::kNotSent && exchange->attempts <= options_.retries && !closed_) {
      retry = true;
      delay = std::chrono::milliseconds(50) * (1 << std::min(exchange->attempts - 1, 10));
    }
    if (!retry) {
      exchange->done(std::move(reply));
      --active_;
      while (!queue_.empty() && active_ < static_cast<size_t>(max_concurrency_)) {
        auto next = std::move(queue_.front());
        queue_.pop_front();
        if (closed_) {
          next->done(HttpReply{HttpReply::Kind::kNotSent, 0, {}, "backend shut down", false});
          continue;
        }
        ++active_;
        Attempt(std::move(next));
      }
      return;
    }
    if (delay.count() == 0) return Attempt(std::move(exchange));
    auto timer = std::make_shared<asio::steady_timer>(strand_, delay);
    timer->async_wait([self = shared_from_this(), timer, exchange](const beast::error_code&) mutable {
      self->Attempt(std::move(exchange));
    });
  }

  asio::strand<asio::any_io_executor> strand_;
  HttpUrl url_;
  ssl::context& ssl_ctx_;
  const CarrierBillingOptions& options_;
  int max_concurrency_;
  std::atomic<uint64_t>& requests_;
  std::atomic<uint64_t>& timeouts_;
  bool closed_ = false;
  size_t active_ = 0;
  std::deque<std::shared_ptr<Exchange>> queue_;
  std::vector<std::shared_ptr<CbConnection>> idle_;
};

namespace {

template <class Stream>
class CbConnectionT final : public CbConnection, public std::enable_shared_from_this<CbConnectionT<Stream>> {
 public:
  template <class... StreamArgs>
  explicit CbConnectionT(std::shared_ptr<CbPool> pool, StreamArgs&&... args)
      : pool_(std::move(pool)), resolver_(pool_->strand()), stream_(std::forward<StreamArgs>(args)...) {}

  void Run(std::shared_ptr<Exchange> exchange, Done done) override {
    exchange_ = std::move(exchange);
    done_ = std::move(done);
    reused_ = connected_;
    written_ = false;
    Lowest().expires_after(pool_->options().timeout);
    if (connected_) return Write();
    resolver_.async_resolve(pool_->url().host, pool_->url().port,
                            [self = this->shared_from_this()](beast::error_code ec, tcp::resolver::results_type results) {
                              if (ec) return self->Fail(ec, "resolve");
                              self->Lowest().async_connect(
                                  results, [self](beast::error_code ec, const tcp::endpoint&) { self->OnConnect(ec); });
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
    Lowest().socket().set_option(tcp::no_delay(true), ec);
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      const std::string& name = pool_->url().host;
      if (!SSL_set_tlsext_host_name(stream_.native_handle(), name.c_str())) {
        return Fail(beast::error_code(static_cast<int>(::ERR_get_error()), asio::error::get_ssl_category()), "SNI");
      }
      if (pool_->options().tls_verify) stream_.set_verify_callback(ssl::host_name_verification(name));
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
    request_.set(http::field::host, pool_->url().host_header);
    request_.set(http::field::user_agent, "donagate/" DONAGATE_VERSION);
    request_.set(http::field::accept, "application/json");
    if (!exchange_->authorization.empty()) request_.set(http::field::authorization, exchange_->authorization);
    request_.keep_alive(true);
    if (exchange_->method != http::verb::get) {
      request_.set(http::field::content_type, exchange_->content_type);
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
    reply.error = std::string(stage) + ": " + (ec == beast::error::timeout ? std::string("timed out") : ec.message());
    if (!written_) {
      reply.kind = HttpReply::Kind::kNotSent;
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

  std::shared_ptr<CbPool> pool_;
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

std::shared_ptr<CbConnection> CbPool::NewConnection() {
  if (url_.tls) {
    return std::make_shared<CbConnectionT<beast::ssl_stream<beast::tcp_stream>>>(shared_from_this(), strand_, ssl_ctx_);
  }
  return std::make_shared<CbConnectionT<beast::tcp_stream>>(shared_from_this(), strand_);
}

// ---------------------------------------------------------------------------------------------

namespace {

// A payment as retrieved or created (CAMARA Payment / PaymentCreated).
struct PaymentView {
  std::string payment_id;
  std::string status;  // paymentStatus
  std::string client_correlator;
  std::string phone_number;
  double amount = 0;
};

std::optional<PaymentView> ReadPayment(const Json& j) {
  if (!j.is_object()) return std::nullopt;
  PaymentView p;
  p.payment_id = Str(j, "paymentId");
  p.status = Str(j, "paymentStatus");
  if (p.payment_id.empty() || p.status.empty()) return std::nullopt;
  if (auto at = j.find("amountTransaction"); at != j.end() && at->is_object()) {
    p.client_correlator = Str(*at, "clientCorrelator");
    p.phone_number = Str(*at, "phoneNumber");
    if (auto pa = at->find("paymentAmount"); pa != at->end() && pa->is_object()) {
      if (auto ci = pa->find("chargingInformation"); ci != pa->end() && ci->is_object()) {
        if (auto a = ci->find("amount"); a != ci->end() && a->is_number()) p.amount = a->get<double>();
      }
    }
  }
  return p;
}

// A paymentStatus read from the server, as our outcome. "reserved" is handled by the caller.
ChargeResult FromPaymentStatus(const PaymentView& p) {
  if (p.status == "succeeded") return ChargeResult::Charged(p.payment_id);
  if (p.status == "denied") return ChargeResult::Of(ChargeOutcome::kRejected, "paymentStatus denied (" + p.payment_id + ")");
  if (p.status == "cancelled") {
    return ChargeResult::Of(ChargeOutcome::kRejected, "paymentStatus cancelled (" + p.payment_id + ")");
  }
  // processing, pending_validation, reserved (not confirmable here) or something new: maybe.
  return ChargeResult::Of(ChargeOutcome::kUnknown, "paymentStatus " + p.status.substr(0, 40) + " (" + p.payment_id + ")");
}

ChargeResult TransportResult(const HttpReply& reply) {
  switch (reply.kind) {
    case HttpReply::Kind::kNotSent:
      return ChargeResult::Of(ChargeOutcome::kUnavailable, "not sent: " + reply.error, true);
    case HttpReply::Kind::kTimeoutAfterSend:
      return ChargeResult::Of(ChargeOutcome::kUnknown, "timeout after the request was sent", true);
    case HttpReply::Kind::kLostAfterSend:
      return ChargeResult::Of(ChargeOutcome::kUnknown, "connection lost after the request was sent: " + reply.error,
                              true);
    case HttpReply::Kind::kResponse:
      break;
  }
  return ChargeResult::Of(ChargeOutcome::kUnknown, "internal: not a transport failure", true);
}

// An error answer to createPayment / preparePayment / confirmPayment (the payment was not
// made unless said otherwise). docs/charging.md has this table.
ChargeResult MapPaymentError(const HttpReply& reply) {
  if (reply.kind != HttpReply::Kind::kResponse) return TransportResult(reply);
  const std::optional<Json> j = ParseJson(reply.body);
  const std::string code = ErrorCode(j);
  const unsigned s = reply.status;
  const std::string d = Describe(reply, j);
  if (s == 409) {
    // ALREADY_EXISTS: a replayed clientCorrelator. The server will not tell the first
    // result here; Status (retrieval by clientCorrelator) does.
    return ChargeResult::Of(ChargeOutcome::kUnknown, "clientCorrelator already known, resolve by retrieval: " + d);
  }
  if (s == 422 && code == "CARRIER_BILLING.USER_AMOUNT_THRESHOLD_OVERPASSED") {
    return ChargeResult::Of(ChargeOutcome::kInsufficientFunds, d);
  }
  if (s == 422 && code == "SERVICE_NOT_APPLICABLE") return ChargeResult::Of(ChargeOutcome::kSubscriberBarred, d);
  if (s == 403 && code == "CARRIER_BILLING.PAYMENT_DENIED") return ChargeResult::Of(ChargeOutcome::kSubscriberBarred, d);
  if (s == 401) return ChargeResult::Of(ChargeOutcome::kUnavailable, "not authorised after a token refresh: " + d, true);
  if (s == 429 || s == 408) return ChargeResult::Of(ChargeOutcome::kUnavailable, d, true);
  if (s >= 500) return ChargeResult::Of(ChargeOutcome::kUnknown, d, true);
  // 400 INVALID_ARGUMENT, 403 PERMISSION_DENIED, 404 IDENTIFIER_NOT_FOUND, other 422s.
  return ChargeResult::Of(ChargeOutcome::kRejected, d);
}

bool IsSuccess(unsigned status) { return status >= 200 && status < 300; }

}  // namespace

// ---------------------------------------------------------------------------------------------

class CarrierBillingChargingBackend::Impl : public std::enable_shared_from_this<Impl> {
 public:
  Impl(asio::any_io_executor executor, CarrierBillingOptions options)
      : executor_(executor), strand_(asio::make_strand(executor)), options_(std::move(options)),
        name_("carrier_billing:" + options_.operator_name), ssl_ctx_(ssl::context::tls_client) {}

  bool Init(std::string* error) {
    if (options_.timeout.count() <= 0) {
      *error = "carrier billing timeout must be positive";
      return false;
    }
    if (options_.client_id.empty()) {
      *error = "carrier billing needs a client_id";
      return false;
    }
    HttpUrl api, token;
    if (!ParseHttpUrl("carrier billing url", options_.url, &api, error)) return false;
    if (!ParseHttpUrl("carrier billing token_url", options_.token_url, &token, error)) return false;
    if ((api.tls || token.tls) &&
        !ConfigureTlsClient(ssl_ctx_, {.verify = options_.tls_verify, .ca_file = options_.ca_file, .cert_file = {}, .key_file = {}}, "carrier billing",
                            error)) {
      return false;
    }
    api_ = std::make_shared<CbPool>(strand_, api, ssl_ctx_, options_, options_.max_concurrency, requests_, timeouts_);
    token_pool_ = std::make_shared<CbPool>(strand_, token, ssl_ctx_, options_, 2, token_requests_, timeouts_);
    return true;
  }

  const std::string& name() const { return name_; }
  asio::any_io_executor executor() const { return executor_; }

  void Shutdown() {
    asio::post(strand_, [self = shared_from_this()] {
      self->api_->Shutdown();
      self->token_pool_->Shutdown();
    });
  }

  Stats stats() const {
    Stats s;
    s.requests = requests_.load();
    s.token_requests = token_requests_.load();
    s.token_refreshes_on_401 = refreshes_on_401_.load();
    s.timeouts = timeouts_.load();
    s.retrievals = retrievals_.load();
    s.token_failures = token_failures_.load();
    return s;
  }

  // --- API calls with a token ------------------------------------------------------------

  // Sends method/target/body to the API with a valid token; on 401 refreshes the token once
  // and repeats (a 401 means the request was refused before it was processed). Strand only.
  void Call(http::verb method, std::string target, std::string body, std::function<void(HttpReply)> done) {
    WithToken([self = shared_from_this(), method, target = std::move(target), body = std::move(body),
               done = std::move(done)](std::optional<std::string> token, std::string why) mutable {
      if (!token) return done(HttpReply{HttpReply::Kind::kNotSent, 0, {}, "no access token: " + why, false});
      self->Send(method, target, body, *token,
                 [self, method, target, body, used = *token, done = std::move(done)](HttpReply reply) mutable {
                   if (reply.kind != HttpReply::Kind::kResponse || reply.status != 401) return done(std::move(reply));
                   ++self->refreshes_on_401_;
                   self->Invalidate(used);
                   self->WithToken([self, method, target = std::move(target), body = std::move(body),
                                    done = std::move(done)](std::optional<std::string> token, std::string why) mutable {
                     if (!token) {
                       return done(HttpReply{HttpReply::Kind::kNotSent, 0, {}, "no access token: " + why, false});
                     }
                     self->Send(method, target, body, *token, std::move(done));
                   });
                 });
    });
  }

  std::string ApiPath(const std::string& rest) const { return api_->url().path + rest; }

  // --- Flows (strand) ------------------------------------------------------------------------

  void Charge(ChargeRequest request, std::function<void(ChargeResult)> done) {
    Json amount_transaction = {
        {"phoneNumber", "+" + request.msisdn},
        {"clientCorrelator", request.idempotency_key},
        {"referenceCode", request.idempotency_key},
        {"paymentAmount",
         {{"chargingInformation",
           {{"amount", request.amount_vnd},
            {"currency", "VND"},
            {"description", options_.description + (request.campaign.empty() ? "" : " " + request.campaign)}}},
          {"chargingMetaData", MetaData(request)}}}};
    const Json body = {{"amountTransaction", amount_transaction}};
    const std::string phone = "+" + request.msisdn;
    if (!options_.two_step) {
      Call(http::verb::post, ApiPath("/payments"), body.dump(), [done = std::move(done)](HttpReply reply) {
        if (reply.kind == HttpReply::Kind::kResponse && IsSuccess(reply.status)) {
          const std::optional<Json> j = ParseJson(reply.body);
          const std::optional<PaymentView> p = j ? ReadPayment(*j) : std::nullopt;
          if (!p) return done(ChargeResult::Of(ChargeOutcome::kUnknown, "createPayment answer without paymentId/paymentStatus", true));
          return done(FromPaymentStatus(*p));
        }
        done(MapPaymentError(reply));
      });
      return;
    }
    Call(http::verb::post, ApiPath("/payments/prepare"), body.dump(),
         [self = shared_from_this(), phone, done = std::move(done)](HttpReply reply) mutable {
           if (reply.kind == HttpReply::Kind::kResponse && IsSuccess(reply.status)) {
             const std::optional<Json> j = ParseJson(reply.body);
             const std::optional<PaymentView> p = j ? ReadPayment(*j) : std::nullopt;
             if (!p) {
               return done(ChargeResult::Of(ChargeOutcome::kUnknown, "preparePayment answer without paymentId/paymentStatus", true));
             }
             if (p->status == "reserved") return self->Confirm(p->payment_id, phone, std::move(done));
             if (p->status == "pending_validation") {
               // An OTP the donor would have to type: not possible for an SMS donation.
               self->Cancel(p->payment_id, phone);
               return done(ChargeResult::Of(ChargeOutcome::kRejected, "operator requires payment validation (OTP); cancelled"));
             }
             return done(FromPaymentStatus(*p));
           }
           done(MapPaymentError(reply));
         });
  }

  // confirmPayment, then retrievePayment of the id for the final paymentStatus.
  void Confirm(const std::string& payment_id, const std::string& phone, std::function<void(ChargeResult)> done) {
    const std::string target = ApiPath("/payments/" + PercentEncode(payment_id));
    Call(http::verb::post, target + "/confirm", Json{{"phoneNumber", phone}}.dump(),
         [self = shared_from_this(), payment_id, phone, target, done = std::move(done)](HttpReply reply) mutable {
           if (reply.kind == HttpReply::Kind::kResponse) {
             const std::optional<Json> j = ParseJson(reply.body);
             const std::string code = ErrorCode(j);
             // 409 PAYMENT_CONFIRMED: an earlier confirm of ours went through; read the result.
             const bool confirmed = IsSuccess(reply.status) || (reply.status == 409 && code == "CARRIER_BILLING.PAYMENT_CONFIRMED");
             if (confirmed) return self->RetrieveById(target, std::move(done));
             if (reply.status == 409 && code == "CARRIER_BILLING.PAYMENT_CANCELLED") {
               return done(ChargeResult::Of(ChargeOutcome::kRejected, "payment was cancelled (" + payment_id + ")"));
             }
             ChargeResult r = MapPaymentError(reply);
             // A business refusal leaves a reservation behind: release it.
             if (IsFinal(r.outcome) && r.outcome != ChargeOutcome::kCharged) self->Cancel(payment_id, phone);
             return done(std::move(r));
           }
           done(TransportResult(reply).outcome == ChargeOutcome::kUnavailable
                    ? ChargeResult::Of(ChargeOutcome::kUnknown, "confirm not sent; payment " + payment_id + " stays reserved", true)
                    : TransportResult(reply));
         });
  }

  void RetrieveById(const std::string& target, std::function<void(ChargeResult)> done) {
    Call(http::verb::get, target, {}, [done = std::move(done)](HttpReply reply) {
      if (reply.kind == HttpReply::Kind::kResponse && reply.status == 200) {
        const std::optional<Json> j = ParseJson(reply.body);
        const std::optional<PaymentView> p = j ? ReadPayment(*j) : std::nullopt;
        if (p) return done(FromPaymentStatus(*p));
      }
      ChargeResult r = TransportResult(reply);
      if (reply.kind == HttpReply::Kind::kResponse) r.detail = "retrievePayment: HTTP " + std::to_string(reply.status);
      r.outcome = ChargeOutcome::kUnknown;  // confirmed (or maybe): never "not performed"
      done(std::move(r));
    });
  }

  void Cancel(const std::string& payment_id, const std::string& phone) {
    Call(http::verb::post, ApiPath("/payments/" + PercentEncode(payment_id) + "/cancel"),
         Json{{"phoneNumber", phone}}.dump(), [](HttpReply) {});
  }

  // Retrieval by clientCorrelator. The answer's list is filtered again on our side: a server
  // that ignored the filter must not make us adopt somebody else's payment.
  void FindByCorrelator(const std::string& key, std::function<void(ChargeResult, std::optional<PaymentView>)> done) {
    ++retrievals_;
    Call(http::verb::get, ApiPath("/payments?clientCorrelator=" + PercentEncode(key)), {},
         [key, done = std::move(done)](HttpReply reply) {
           if (reply.kind != HttpReply::Kind::kResponse) {
             ChargeResult r = TransportResult(reply);
             if (reply.kind != HttpReply::Kind::kNotSent) r.outcome = ChargeOutcome::kUnknown;
             return done(std::move(r), std::nullopt);
           }
           const std::optional<Json> j = ParseJson(reply.body);
           if (reply.status == 404 && (ErrorCode(j) == "NOT_FOUND" || ErrorCode(j) == "IDENTIFIER_NOT_FOUND")) {
             return done(ChargeResult::Of(ChargeOutcome::kNotFound, "no payment with this clientCorrelator"), std::nullopt);
           }
           if (reply.status == 200 && j && j->is_array()) {
             for (const Json& item : *j) {
               std::optional<PaymentView> p = ReadPayment(item);
               if (p && p->client_correlator == key) return done(FromPaymentStatus(*p), p);
             }
             return done(ChargeResult::Of(ChargeOutcome::kNotFound, "no payment with this clientCorrelator"), std::nullopt);
           }
           if (reply.status == 429 || reply.status == 408) {
             return done(ChargeResult::Of(ChargeOutcome::kUnavailable, Describe(reply, j), true), std::nullopt);
           }
           // A 401 after the refresh, a 403 or a 5xx says nothing about the payment.
           done(ChargeResult::Of(ChargeOutcome::kUnknown, "retrievePayments failed: " + Describe(reply, j),
                                 reply.status >= 500 || reply.status == 401),
                std::nullopt);
         });
  }

  void Status(const std::string& key, std::function<void(ChargeResult)> done) {
    FindByCorrelator(key, [self = shared_from_this(), done = std::move(done)](ChargeResult r,
                                                                             std::optional<PaymentView> p) mutable {
      if (p && p->status == "reserved") {
        // Prepared, confirm lost or never sent: finish the charge the donor asked for.
        return self->Confirm(p->payment_id, p->phone_number, std::move(done));
      }
      done(std::move(r));
    });
  }

  void Refund(const std::string& key, int64_t amount_vnd, std::function<void(RefundResult)> done) {
    FindByCorrelator(key, [self = shared_from_this(), key, amount_vnd, done = std::move(done)](
                              ChargeResult r, std::optional<PaymentView> p) mutable {
      if (!p) {
        if (r.outcome == ChargeOutcome::kNotFound) return done(RefundResult{RefundOutcome::kNotFound, r.detail, false});
        if (r.outcome == ChargeOutcome::kUnavailable) return done(RefundResult{RefundOutcome::kUnavailable, r.detail, true});
        return done(RefundResult{RefundOutcome::kUnknown, r.detail, r.backend_failure});
      }
      if (p->status != "succeeded") {
        return done(RefundResult{RefundOutcome::kNotFound, "payment is " + p->status + ", not succeeded", false});
      }
      if (static_cast<double>(amount_vnd) > p->amount + 0.0005) {
        return done(RefundResult{RefundOutcome::kRejected, "refund exceeds the payment amount", false});
      }
      self->CreateRefund(*p, key, amount_vnd, std::move(done));
    });
  }

  void CreateRefund(const PaymentView& p, const std::string& key, int64_t amount_vnd,
                    std::function<void(RefundResult)> done) {
    const bool total = std::fabs(p.amount - static_cast<double>(amount_vnd)) < 0.0005;
    const std::string correlator = key + "-refund";
    Json refund_amount = Json::object();
    if (!total) {
      refund_amount["chargingInformation"] = {
          {"amount", amount_vnd}, {"currency", "VND"}, {"description", options_.description + " refund"}};
    }
    const Json body = {{"type", total ? "total" : "partial"},
                       {"reason", "donation refund"},
                       {"amountTransaction",
                        {{"clientCorrelator", correlator}, {"referenceCode", key}, {"refundAmount", refund_amount}}}};
    const std::string refunds = ApiPath("/payments/" + PercentEncode(p.payment_id) + "/refunds");
    Call(http::verb::post, refunds, body.dump(),
         [self = shared_from_this(), refunds, correlator, done = std::move(done)](HttpReply reply) mutable {
           if (reply.kind == HttpReply::Kind::kNotSent) {
             return done(RefundResult{RefundOutcome::kUnavailable, "not sent: " + reply.error, true});
           }
           if (reply.kind != HttpReply::Kind::kResponse) {
             return done(RefundResult{RefundOutcome::kUnknown, "no answer after the refund was sent", true});
           }
           const std::optional<Json> j = ParseJson(reply.body);
           if (IsSuccess(reply.status) && j) return done(FromRefundStatus(Str(*j, "refundStatus")));
           if (reply.status == 409) return self->FindRefund(refunds, correlator, std::move(done));
           if (reply.status >= 500) return done(RefundResult{RefundOutcome::kUnknown, Describe(reply, j), true});
           if (reply.status == 429 || reply.status == 408 || reply.status == 401) {
             return done(RefundResult{RefundOutcome::kUnavailable, Describe(reply, j), true});
           }
           done(RefundResult{RefundOutcome::kRejected, Describe(reply, j), false});
         });
  }

  static RefundResult FromRefundStatus(const std::string& status) {
    if (status == "succeeded") return RefundResult{RefundOutcome::kRefunded, {}, false};
    if (status == "denied") return RefundResult{RefundOutcome::kRejected, "refundStatus denied", false};
    return RefundResult{RefundOutcome::kUnknown, "refundStatus " + status.substr(0, 40), false};
  }

  // Our refund was refused as a replay: the earlier one's result, from retrieveRefunds.
  void FindRefund(const std::string& refunds, const std::string& correlator, std::function<void(RefundResult)> done) {
    Call(http::verb::get, refunds, {}, [correlator, done = std::move(done)](HttpReply reply) {
      if (reply.kind == HttpReply::Kind::kResponse && reply.status == 200) {
        const std::optional<Json> j = ParseJson(reply.body);
        if (j && j->is_array()) {
          for (const Json& r : *j) {
            auto at = r.find("amountTransaction");
            if (at != r.end() && Str(*at, "clientCorrelator") == correlator) return done(FromRefundStatus(Str(r, "refundStatus")));
          }
        }
        return done(RefundResult{RefundOutcome::kRejected, "refund refused (409) and no refund of ours listed", false});
      }
      done(RefundResult{RefundOutcome::kUnknown, "retrieveRefunds failed", true});
    });
  }

  void Probe(std::function<void(ProbeResult)> done) {
    token_.reset();  // a fresh grant: the probe checks the credentials themselves
    const std::string key = "probe-" + std::to_string(Clock::now().time_since_epoch().count() % 1000000000);
    WithToken([self = shared_from_this(), key, done = std::move(done)](std::optional<std::string> token,
                                                                      std::string why) mutable {
      if (!token) return done(ProbeResult{false, "token endpoint " + self->options_.token_url + ": " + why});
      self->FindByCorrelator(key, [self, key, done = std::move(done)](ChargeResult r, std::optional<PaymentView>) {
        const bool ok = r.outcome == ChargeOutcome::kNotFound;
        done(ProbeResult{ok, "token granted (expires in " + std::to_string(self->token_lifetime_s_) +
                                 " s); retrievePayments clientCorrelator=" + key + " -> " +
                                 std::string(ToString(r.outcome)) + (r.detail.empty() ? "" : " (" + r.detail + ")")});
      });
    });
  }

 private:
  Json MetaData(const ChargeRequest& request) const {
    Json m = {{"channel", "SMS"}};
    if (!request.campaign.empty()) m["serviceId"] = request.campaign;
    if (!options_.merchant_identifier.empty()) m["merchantIdentifier"] = options_.merchant_identifier;
    return m;
  }

  void Send(http::verb method, const std::string& target, const std::string& body, const std::string& token,
            std::function<void(HttpReply)> done) {
    auto exchange = std::make_shared<Exchange>();
    exchange->method = method;
    exchange->target = target;
    exchange->body = body;
    exchange->authorization = "Bearer " + token;
    exchange->done = std::move(done);
    api_->Submit(std::move(exchange));
  }

  // --- OAuth 2.0 client credentials ----------------------------------------------------------

  using TokenWaiter = std::function<void(std::optional<std::string>, std::string)>;

  void WithToken(TokenWaiter waiter) {
    const auto now = Clock::now();
    if (token_ && now < refresh_at_) return waiter(*token_, {});
    // Past the refresh point but not yet expired: keep using it while the new one comes.
    if (token_ && now < expires_at_) {
      waiter(*token_, {});
      return RequestToken();
    }
    waiters_.push_back(std::move(waiter));
    RequestToken();
  }

  void Invalidate(const std::string& used) {
    if (token_ && *token_ == used) token_.reset();
  }

  void RequestToken() {
    if (token_in_flight_) return;
    token_in_flight_ = true;
    auto exchange = std::make_shared<Exchange>();
    exchange->method = http::verb::post;
    exchange->target = token_pool_->url().path.empty() ? "/" : token_pool_->url().path;
    exchange->content_type = "application/x-www-form-urlencoded";
    exchange->body = "grant_type=client_credentials";
    if (!options_.scope.empty()) exchange->body += "&scope=" + PercentEncode(options_.scope);
    // RFC 6749 §2.3.1: client_id and secret form-encoded, then HTTP Basic.
    exchange->authorization = "Basic " + Base64(PercentEncode(options_.client_id) + ":" + PercentEncode(options_.client_secret));
    exchange->done = [self = shared_from_this()](HttpReply reply) { self->OnToken(std::move(reply)); };
    token_pool_->Submit(std::move(exchange));
  }

  void OnToken(HttpReply reply) {
    token_in_flight_ = false;
    std::string why;
    if (reply.kind != HttpReply::Kind::kResponse) {
      why = reply.error.empty() ? "no answer" : reply.error;
    } else if (reply.status != 200) {
      const std::optional<Json> j = ParseJson(reply.body);
      why = "HTTP " + std::to_string(reply.status) + (j && !Str(*j, "error").empty() ? " " + Str(*j, "error") : "");
    } else {
      const std::optional<Json> j = ParseJson(reply.body);
      const std::string access = j ? Str(*j, "access_token") : std::string();
      const std::string type = j ? Str(*j, "token_type") : std::string();
      if (access.empty() || (!type.empty() && type != "Bearer" && type != "bearer")) {
        why = "token answer without a bearer access_token";
      } else {
        int64_t lifetime = 3600;  // RFC 6749 §5.1: expires_in is RECOMMENDED; assume an hour
        if (auto it = j->find("expires_in"); it != j->end() && it->is_number_integer()) lifetime = it->get<int64_t>();
        lifetime = std::max<int64_t>(1, lifetime);
        const auto now = Clock::now();
        token_ = access;
        token_lifetime_s_ = lifetime;
        expires_at_ = now + std::chrono::seconds(lifetime);
        // Refresh ahead of expiry; short-lived tokens at half their life.
        const auto margin = std::min<std::chrono::milliseconds>(options_.refresh_margin, std::chrono::seconds(lifetime) / 2);
        refresh_at_ = expires_at_ - margin;
      }
    }
    if (!why.empty()) ++token_failures_;
    auto waiters = std::move(waiters_);
    waiters_.clear();
    for (auto& w : waiters) {
      if (token_) {
        w(*token_, {});
      } else {
        w(std::nullopt, why);
      }
    }
  }

  asio::any_io_executor executor_;
  asio::strand<asio::any_io_executor> strand_;
  CarrierBillingOptions options_;
  std::string name_;
  ssl::context ssl_ctx_;
  std::shared_ptr<CbPool> api_;
  std::shared_ptr<CbPool> token_pool_;
  // Strand-only token state.
  std::optional<std::string> token_;
  int64_t token_lifetime_s_ = 0;
  Clock::time_point refresh_at_{}, expires_at_{};
  bool token_in_flight_ = false;
  std::vector<TokenWaiter> waiters_;
  std::atomic<uint64_t> requests_{0}, token_requests_{0}, refreshes_on_401_{0}, timeouts_{0}, retrievals_{0},
      token_failures_{0};

 public:
  asio::strand<asio::any_io_executor>& strand() { return strand_; }
};

// ---------------------------------------------------------------------------------------------

std::unique_ptr<CarrierBillingChargingBackend> CarrierBillingChargingBackend::Create(asio::any_io_executor executor,
                                                                                     CarrierBillingOptions options,
                                                                                     std::string* error) {
  auto impl = std::make_shared<Impl>(std::move(executor), std::move(options));
  if (!impl->Init(error)) return nullptr;
  return std::unique_ptr<CarrierBillingChargingBackend>(new CarrierBillingChargingBackend(std::move(impl)));
}

CarrierBillingChargingBackend::CarrierBillingChargingBackend(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

CarrierBillingChargingBackend::~CarrierBillingChargingBackend() { impl_->Shutdown(); }

std::string_view CarrierBillingChargingBackend::Name() const { return impl_->name(); }

CarrierBillingChargingBackend::Stats CarrierBillingChargingBackend::stats() const { return impl_->stats(); }

std::function<CarrierBillingChargingBackend::Stats()> CarrierBillingChargingBackend::StatsSource() const {
  return [impl = impl_] { return impl->stats(); };
}

namespace {
// Runs `work` on the strand; its result is handed to `done` on the executor (never inline).
template <class Result, class Work>
void OnStrand(asio::strand<asio::any_io_executor>& strand, asio::any_io_executor executor,
              std::function<void(Result)> done, Work work) {
  asio::post(strand, [executor, done = std::move(done), work = std::move(work)]() mutable {
    work([executor, done = std::move(done)](Result r) mutable {
      asio::post(executor, [done = std::move(done), r = std::move(r)]() mutable { done(std::move(r)); });
    });
  });
}
}  // namespace

void CarrierBillingChargingBackend::Charge(const ChargeRequest& request, ChargeCallback done) {
  if (std::string error = ValidateChargeRequest(request); !error.empty()) {
    asio::post(impl_->executor(), [done = std::move(done), error = std::move(error)] {
      done(ChargeResult::Of(ChargeOutcome::kRejected, error));
    });
    return;
  }
  OnStrand<ChargeResult>(impl_->strand(), impl_->executor(), std::move(done),
                         [impl = impl_, request](std::function<void(ChargeResult)> finish) mutable {
                           impl->Charge(std::move(request), std::move(finish));
                         });
}

void CarrierBillingChargingBackend::Status(const std::string& idempotency_key, ChargeCallback done) {
  if (!IsValidIdempotencyKey(idempotency_key)) {
    asio::post(impl_->executor(), [done = std::move(done)] {
      done(ChargeResult::Of(ChargeOutcome::kRejected, "invalid idempotency key"));
    });
    return;
  }
  OnStrand<ChargeResult>(impl_->strand(), impl_->executor(), std::move(done),
                         [impl = impl_, key = idempotency_key](std::function<void(ChargeResult)> finish) mutable {
                           impl->Status(key, std::move(finish));
                         });
}

void CarrierBillingChargingBackend::Refund(const std::string& idempotency_key, int64_t amount_vnd, RefundCallback done) {
  if (!IsValidIdempotencyKey(idempotency_key) || amount_vnd <= 0) {
    asio::post(impl_->executor(), [done = std::move(done)] {
      done(RefundResult{RefundOutcome::kRejected, "invalid idempotency key or amount", false});
    });
    return;
  }
  OnStrand<RefundResult>(impl_->strand(), impl_->executor(), std::move(done),
                         [impl = impl_, key = idempotency_key, amount_vnd](std::function<void(RefundResult)> finish) mutable {
                           impl->Refund(key, amount_vnd, std::move(finish));
                         });
}

void CarrierBillingChargingBackend::Probe(std::function<void(ProbeResult)> done) {
  OnStrand<ProbeResult>(impl_->strand(), impl_->executor(), std::move(done),
                        [impl = impl_](std::function<void(ProbeResult)> finish) mutable { impl->Probe(std::move(finish)); });
}

}  // namespace donagate::billing
