#include "tools/charging_sim/sim_server.h"

#include <boost/asio/ssl.hpp>
#include <cstring>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace donagate::charging_sim {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Json = nlohmann::json;

namespace {

std::string NowIso8601() {
  using namespace std::chrono;
  auto now = system_clock::now();
  std::time_t t = system_clock::to_time_t(now);
  auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

bool ValidKey(const std::string& key) {
  if (key.empty() || key.size() > 30) return false;
  for (char c : key) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

bool AllDigits(const std::string& s) {
  if (s.empty() || s.size() > 20) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string Trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return {};
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

}  // namespace

// What to do with one request.
struct Decision {
  unsigned status = 200;
  Json body = Json::object();
  int delay_ms = 0;
  bool drop = false;  // close the connection without answering
};

class SimServer::State {
 public:
  explicit State(SimOptions& options) : options_(options), rng_(options.seed) {}

  Decision Handle(const http::request<http::string_body>& req) {
    std::string target(req.target());
    const bool camara = options_.dialect == Dialect::kCarrierBilling;
    if (!camara && !options_.token.empty() && req[http::field::authorization] != "Bearer " + options_.token) {
      return Reply(401, {{"result", "rejected"}, {"error", "unauthorized"}});
    }
    if (target == "/v1/admin/stats" && req.method() == http::verb::get) {
      return Reply(200, {{"tokens_issued", tokens_issued_}, {"replays_refused", replays_refused_},
                         {"unauthorized", unauthorized_}, {"payments", payments_.size()},
                         {"responses_lost", responses_lost_}, {"responses_late", responses_late_},
                         {"max_in_flight", max_in_flight_}});
    }
    if (camara && target.rfind("/v1/", 0) != 0) {
      Decision d = Camara(req, target);
      d.delay_ms += options_.rates.latency_ms;
      return d;
    }
    if (target == "/v1/admin/config") {
      if (req.method() == http::verb::post) return AdminConfig(req.body());
      return Reply(200, RatesJson());
    }
    if (target == "/v1/debits" && req.method() == http::verb::get) return Debits();
    if (target == "/v1/admin/balances" && req.method() == http::verb::post) return SetBalance(req.body());
    if (target.rfind("/v1/admin/balances/", 0) == 0 && req.method() == http::verb::get) {
      std::string msisdn = target.substr(std::strlen("/v1/admin/balances/"));
      return Reply(200, {{"msisdn", msisdn}, {"balance_vnd", Balance(msisdn)}});
    }
    if (target != "/v1/charges" && target.rfind("/v1/charges/", 0) != 0) {
      return Reply(404, {{"error", "no such endpoint: " + target}});
    }
    Decision d = Route(req, target);
    d.delay_ms += options_.rates.latency_ms;
    return d;
  }

  const std::vector<DebitEntry>& debits() const { return debits_; }

 private:
  struct StoredCharge {
    std::string msisdn;
    int64_t amount_vnd = 0;
    int64_t units = 0;
    std::string campaign;
    std::string operator_name;
    unsigned status = 0;
    Json body;
    int64_t refunded_vnd = 0;
  };

  static Decision Reply(unsigned status, Json body) {
    Decision d;
    d.status = status;
    d.body = std::move(body);
    return d;
  }

  bool Roll(double rate) { return rate > 0 && std::uniform_real_distribution<double>(0, 1)(rng_) < rate; }

  int64_t Balance(const std::string& msisdn) const {
    auto it = options_.balances.find(msisdn);
    return it == options_.balances.end() ? options_.default_balance_vnd : it->second;
  }

  Json RatesJson() const {
    const FaultRates& r = options_.rates;
    return {{"fail_rate", r.fail_rate}, {"timeout_rate", r.timeout_rate}, {"lost_response_rate", r.lost_response_rate},
            {"latency_ms", r.latency_ms}, {"timeout_delay_ms", r.timeout_delay_ms}};
  }

  Decision AdminConfig(const std::string& body) {
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object()) return Reply(400, {{"error", "body must be a JSON object"}});
    FaultRates r = options_.rates;
    try {
      for (auto& [name, value] : j.items()) {
        if (name == "fail_rate") r.fail_rate = value.get<double>();
        else if (name == "timeout_rate") r.timeout_rate = value.get<double>();
        else if (name == "lost_response_rate") r.lost_response_rate = value.get<double>();
        else if (name == "latency_ms") r.latency_ms = value.get<int>();
        else if (name == "timeout_delay_ms") r.timeout_delay_ms = value.get<int>();
        else if (name == "token_lifetime_s") options_.token_lifetime_s = value.get<int>();
        else if (name == "revoke_tokens" && value.get<bool>()) tokens_.clear();
        else return Reply(400, {{"error", "unknown setting: " + name}});
      }
    } catch (const Json::exception& e) {
      return Reply(400, {{"error", std::string("bad value: ") + e.what()}});
    }
    for (double rate : {r.fail_rate, r.timeout_rate, r.lost_response_rate}) {
      if (rate < 0 || rate > 1) return Reply(400, {{"error", "rates must be within 0..1"}});
    }
    if (r.latency_ms < 0 || r.timeout_delay_ms < 0) return Reply(400, {{"error", "delays must be >= 0"}});
    options_.rates = r;
    std::cerr << "charging_sim: config " << RatesJson().dump() << std::endl;
    return Reply(200, RatesJson());
  }

  Decision SetBalance(const std::string& body) {
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("msisdn") || !j["msisdn"].is_string() ||
        !j.contains("balance_vnd") || !j["balance_vnd"].is_number_integer()) {
      return Reply(400, {{"error", "expected {\"msisdn\": \"84...\", \"balance_vnd\": n}"}});
    }
    options_.balances[j["msisdn"].get<std::string>()] = j["balance_vnd"].get<int64_t>();
    return Reply(200, {{"msisdn", j["msisdn"]}, {"balance_vnd", j["balance_vnd"]}});
  }

  Decision Debits() const {
    Json debits = Json::array();
    for (const auto& d : debits_) {
      debits.push_back({{"key", d.key}, {"msisdn", d.msisdn}, {"amount_vnd", d.amount_vnd}, {"at", d.at}});
    }
    Json refunds = Json::array();
    for (const auto& d : refunds_) {
      refunds.push_back({{"key", d.key}, {"msisdn", d.msisdn}, {"amount_vnd", d.amount_vnd}, {"at", d.at}});
    }
    return Reply(200, {{"debits", debits}, {"refunds", refunds}});
  }

  Decision Route(const http::request<http::string_body>& req, const std::string& target) {
    if (Roll(options_.rates.fail_rate)) return Reply(503, {{"error", "simulated outage"}});
    if (target == "/v1/charges") {
      if (req.method() != http::verb::post) return Reply(405, {{"result", "rejected"}, {"error", "use POST"}});
      return Charge(req.body());
    }
    std::string rest = target.substr(std::strlen("/v1/charges/"));
    const std::string refund_suffix = "/refund";
    if (rest.size() > refund_suffix.size() &&
        rest.compare(rest.size() - refund_suffix.size(), refund_suffix.size(), refund_suffix) == 0) {
      if (req.method() != http::verb::post) return Reply(405, {{"result", "rejected"}, {"error", "use POST"}});
      return Refund(PercentDecode(rest.substr(0, rest.size() - refund_suffix.size())), req.body());
    }
    if (req.method() != http::verb::get) return Reply(405, {{"result", "rejected"}, {"error", "use GET"}});
    std::string key = PercentDecode(rest);
    auto it = charges_.find(key);
    if (it == charges_.end()) return Reply(404, {{"result", "not_found"}, {"key", key}});
    Json body = it->second.body;
    body["key"] = key;
    body["amount_vnd"] = it->second.amount_vnd;
    body["refunded_vnd"] = it->second.refunded_vnd;
    return Reply(200, body);
  }

  Decision Charge(const std::string& body) {
    Json j = Json::parse(body, nullptr, false);
    StoredCharge c;
    std::string key;
    try {
      if (j.is_discarded() || !j.is_object()) throw std::runtime_error("body must be a JSON object");
      key = j.at("key").get<std::string>();
      c.msisdn = j.at("msisdn").get<std::string>();
      if (!j.at("amount_vnd").is_number_integer()) throw std::runtime_error("amount_vnd must be an integer");
      c.amount_vnd = j.at("amount_vnd").get<int64_t>();
      if (j.contains("units") && !j["units"].is_number_integer()) throw std::runtime_error("units must be an integer");
      c.units = j.value("units", int64_t{1});
      c.campaign = j.value("campaign", std::string());
      c.operator_name = j.value("operator", std::string());
    } catch (const std::exception& e) {
      return Reply(400, {{"result", "rejected"}, {"error", std::string("malformed request: ") + e.what()}});
    }
    if (!ValidKey(key)) return Reply(400, {{"result", "rejected"}, {"error", "invalid key"}});
    if (!AllDigits(c.msisdn)) return Reply(400, {{"result", "rejected"}, {"error", "invalid msisdn"}});
    if (c.amount_vnd <= 0 || c.units <= 0) return Reply(400, {{"result", "rejected"}, {"error", "invalid amount or units"}});

    Decision d;
    auto it = charges_.find(key);
    if (it != charges_.end()) {
      const StoredCharge& s = it->second;
      if (s.msisdn != c.msisdn || s.amount_vnd != c.amount_vnd || s.units != c.units || s.campaign != c.campaign ||
          s.operator_name != c.operator_name) {
        return Reply(409, {{"result", "rejected"}, {"error", "key already used with different parameters"}});
      }
      d = Reply(s.status, s.body);  // idempotent replay: no second debit
    } else {
      if (options_.barred.count(c.msisdn)) {
        c.status = 403;
        c.body = {{"result", "barred"}, {"error", "subscriber barred"}};
      } else if (Balance(c.msisdn) < c.amount_vnd) {
        c.status = 402;
        c.body = {{"result", "insufficient_funds"}, {"error", "balance too low"}};
      } else {
        options_.balances[c.msisdn] = Balance(c.msisdn) - c.amount_vnd;
        debits_.push_back(DebitEntry{key, c.msisdn, c.amount_vnd, NowIso8601()});
        c.status = 200;
        c.body = {{"result", "charged"}, {"reference", "sim-" + std::to_string(debits_.size())}};
      }
      d = Reply(c.status, c.body);
      charges_.emplace(key, std::move(c));
    }
    // Faults after processing: the charge (if any) happened, the caller just cannot tell.
    if (Roll(options_.rates.lost_response_rate)) {
      d.drop = true;
    } else if (Roll(options_.rates.timeout_rate)) {
      d.delay_ms += options_.rates.timeout_delay_ms;
    }
    return d;
  }

  Decision Refund(const std::string& key, const std::string& body) {
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("amount_vnd") || !j["amount_vnd"].is_number_integer()) {
      return Reply(400, {{"result", "rejected"}, {"error", "expected {\"amount_vnd\": n}"}});
    }
    int64_t amount = j["amount_vnd"].get<int64_t>();
    auto it = charges_.find(key);
    if (it == charges_.end() || it->second.status != 200) return Reply(404, {{"result", "not_found"}});
    StoredCharge& c = it->second;
    if (c.refunded_vnd > 0) {
      if (c.refunded_vnd == amount) return Reply(200, {{"result", "refunded"}, {"replay", true}});
      return Reply(409, {{"result", "rejected"}, {"error", "already refunded with another amount"}});
    }
    if (amount <= 0 || amount > c.amount_vnd) {
      return Reply(409, {{"result", "rejected"}, {"error", "refund exceeds the charged amount"}});
    }
    c.refunded_vnd = amount;
    options_.balances[c.msisdn] = Balance(c.msisdn) + amount;
    refunds_.push_back(DebitEntry{key, c.msisdn, amount, NowIso8601()});
    return Reply(200, {{"result", "refunded"}});
  }

  // --- dialect carrier_billing: CAMARA Carrier Billing (see sim_server.h) ----------------------

  struct CbPayment {
    std::string id, correlator, phone, reference_code, description, status, created, date;
    int64_t amount = 0;
    int64_t refunded = 0;
  };
  struct CbRefund {
    std::string id, correlator, type, status, created;
    int64_t amount = 0;
  };

  static constexpr std::string_view kApiRoot = "/carrier-billing/v0.4";

  static Decision Err(unsigned status, const std::string& code, const std::string& message) {
    return Reply(status, {{"status", status}, {"code", code}, {"message", message}});
  }

  static std::string Base64Decode(std::string_view in) {
    static const std::string kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    int value = 0, bits = -8;
    for (char c : in) {
      const size_t pos = kAlphabet.find(c);
      if (pos == std::string::npos) break;  // '=' padding or junk ends the input
      value = (value << 6) + static_cast<int>(pos);
      bits += 6;
      if (bits >= 0) {
        out.push_back(static_cast<char>((value >> bits) & 0xff));
        bits -= 8;
      }
    }
    return out;
  }

  static bool ValidPhone(const std::string& p) {
    if (p.size() < 6 || p.size() > 16 || p[0] != '+' || p[1] < '1' || p[1] > '9') return false;
    return AllDigits(p.substr(1));
  }

  Json PaymentJson(const CbPayment& p) const {
    Json j = {{"paymentId", p.id},
              {"paymentStatus", p.status},
              {"paymentCreationDate", p.created},
              {"amountTransaction",
               {{"phoneNumber", p.phone},
                {"clientCorrelator", p.correlator},
                {"referenceCode", p.reference_code},
                {"serverReferenceCode", "sim-" + p.id},
                {"resourceURL", std::string(kApiRoot) + "/payments/" + p.id},
                {"paymentAmount",
                 {{"chargingInformation", {{"amount", p.amount}, {"currency", "VND"}, {"description", p.description}}}}}}}};
    if (!p.date.empty()) j["paymentDate"] = p.date;
    return j;
  }

  Decision Camara(const http::request<http::string_body>& req, const std::string& target) {
    if (target == "/oauth/token") {
      if (req.method() != http::verb::post) return Reply(405, {{"error", "invalid_request"}});
      return Token(req);
    }
    const std::string root(kApiRoot);
    if (target.rfind(root + "/", 0) != 0) return Err(404, "NOT_FOUND", "no such endpoint: " + target);
    std::string path = target.substr(root.size());
    std::string query;
    if (size_t q = path.find('?'); q != std::string::npos) {
      query = path.substr(q + 1);
      path = path.substr(0, q);
    }
    std::string auth(req[http::field::authorization]);
    auto token = auth.rfind("Bearer ", 0) == 0 ? tokens_.find(auth.substr(7)) : tokens_.end();
    if (token == tokens_.end() || std::chrono::steady_clock::now() >= token->second) {
      ++unauthorized_;
      return Err(401, "UNAUTHENTICATED", "Request not authenticated due to missing, invalid, or expired credentials.");
    }
    if (Roll(options_.rates.fail_rate)) return Err(503, "UNAVAILABLE", "simulated outage");
    const bool post = req.method() == http::verb::post;
    if (path == "/payments" && post) return WithFaults(CreatePayment(req.body(), /*two_step=*/false));
    if (path == "/payments/prepare" && post) return WithFaults(CreatePayment(req.body(), /*two_step=*/true));
    if (path == "/payments" && req.method() == http::verb::get) return ListPayments(query);
    const std::string prefix = "/payments/";
    if (path.rfind(prefix, 0) != 0) return Err(404, "NOT_FOUND", "no such endpoint: " + path);
    std::string rest = path.substr(prefix.size());
    std::string action;
    if (size_t slash = rest.find('/'); slash != std::string::npos) {
      action = rest.substr(slash + 1);
      rest = rest.substr(0, slash);
    }
    auto it = payments_.find(PercentDecode(rest));
    if (it == payments_.end()) return Err(404, "NOT_FOUND", "The specified resource is not found.");
    CbPayment& p = it->second;
    if (action.empty() && req.method() == http::verb::get) return Reply(200, PaymentJson(p));
    if (action == "confirm" && post) return WithFaults(Confirm(p));
    if (action == "cancel" && post) return Cancel(p);
    if (action == "refunds" && post) return CreateRefund(p, req.body());
    if (action == "refunds" && req.method() == http::verb::get) return ListRefunds(p);
    return Err(405, "INVALID_ARGUMENT", "method not allowed here");
  }

  // Faults after processing: the payment (if any) exists, the caller just cannot tell.
  Decision WithFaults(Decision d) {
    if (Roll(options_.rates.lost_response_rate)) {
      d.drop = true;
      ++responses_lost_;
    } else if (Roll(options_.rates.timeout_rate)) {
      d.delay_ms += options_.rates.timeout_delay_ms;
      ++responses_late_;
    }
    return d;
  }

  // RFC 6749 §4.4 with HTTP Basic client authentication.
  Decision Token(const http::request<http::string_body>& req) {
    std::string auth(req[http::field::authorization]);
    const std::string expected = PercentEncodeForm(options_.client_id) + ":" + PercentEncodeForm(options_.client_secret);
    if (auth.rfind("Basic ", 0) != 0 || Base64Decode(auth.substr(6)) != expected) {
      return Reply(401, {{"error", "invalid_client"}});
    }
    if (req.body().find("grant_type=client_credentials") == std::string::npos) {
      return Reply(400, {{"error", "unsupported_grant_type"}});
    }
    const std::string token = "sim-token-" + std::to_string(++tokens_issued_) + "-" + std::to_string(rng_() % 1000000);
    tokens_[token] = std::chrono::steady_clock::now() + std::chrono::seconds(options_.token_lifetime_s);
    return Reply(200, {{"access_token", token}, {"token_type", "Bearer"}, {"expires_in", options_.token_lifetime_s}});
  }

  static std::string PercentEncodeForm(const std::string& s) {
    static const char* kHex = "0123456789ABCDEF";
    std::string out;
    for (unsigned char c : s) {
      if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
        out.push_back(static_cast<char>(c));
      } else {
        out.push_back('%');
        out.push_back(kHex[c >> 4]);
        out.push_back(kHex[c & 15]);
      }
    }
    return out;
  }

  Decision CreatePayment(const std::string& body, bool two_step) {
    Json j = Json::parse(body, nullptr, false);
    CbPayment p;
    try {
      if (j.is_discarded() || !j.is_object()) throw std::runtime_error("body must be a JSON object");
      const Json& at = j.at("amountTransaction");
      p.phone = at.at("phoneNumber").get<std::string>();
      p.correlator = at.value("clientCorrelator", std::string());
      p.reference_code = at.at("referenceCode").get<std::string>();
      const Json& ci = at.at("paymentAmount").at("chargingInformation");
      if (ci.at("currency").get<std::string>() != "VND") throw std::runtime_error("currency must be VND");
      const double amount = ci.at("amount").get<double>();
      if (amount <= 0 || amount != static_cast<double>(static_cast<int64_t>(amount))) {
        throw std::runtime_error("amount must be a positive whole number of dong");
      }
      p.amount = static_cast<int64_t>(amount);
      p.description = ci.at("description").get<std::string>();
    } catch (const std::exception& e) {
      return Err(400, "INVALID_ARGUMENT", std::string("Client specified an invalid argument: ") + e.what());
    }
    if (!ValidPhone(p.phone)) return Err(400, "INVALID_ARGUMENT", "phoneNumber does not match ^\\+[1-9][0-9]{4,14}$");
    if (p.correlator.empty()) return Err(400, "INVALID_ARGUMENT", "clientCorrelator is required by this server");
    if (by_correlator_.count(p.correlator)) {
      ++replays_refused_;
      return Err(409, "ALREADY_EXISTS", "clientCorrelator already exist on server");
    }
    const std::string msisdn = p.phone.substr(1);
    if (options_.barred.count(msisdn)) {
      // Servers do name the line in messages; the client must keep it out of its logs.
      return Err(403, "CARRIER_BILLING.PAYMENT_DENIED", "Payment is denied: line " + p.phone + " may not be charged");
    }
    if (Balance(msisdn) < p.amount) {
      return Err(422, "CARRIER_BILLING.USER_AMOUNT_THRESHOLD_OVERPASSED", "The amount exceeds what the user may spend");
    }
    // A reservation holds the amount; confirm turns it into the debit.
    options_.balances[msisdn] = Balance(msisdn) - p.amount;
    p.id = "pay-" + std::to_string(payments_.size() + 1);
    p.created = NowIso8601();
    if (two_step) {
      p.status = "reserved";
    } else {
      p.status = "succeeded";
      p.date = p.created;
      debits_.push_back(DebitEntry{p.correlator, msisdn, p.amount, p.date});
    }
    by_correlator_[p.correlator] = p.id;
    auto& stored = payments_[p.id] = std::move(p);
    return Reply(201, PaymentJson(stored));
  }

  Decision Confirm(CbPayment& p) {
    if (p.status == "succeeded") return Err(409, "CARRIER_BILLING.PAYMENT_CONFIRMED", "Payment already confirmed");
    if (p.status == "cancelled") return Err(409, "CARRIER_BILLING.PAYMENT_CANCELLED", "Payment already cancelled");
    if (p.status != "reserved") return Err(422, "SERVICE_NOT_APPLICABLE", "payment is " + p.status);
    p.status = "succeeded";
    p.date = NowIso8601();
    debits_.push_back(DebitEntry{p.correlator, p.phone.substr(1), p.amount, p.date});
    return Reply(202, Json::object());
  }

  Decision Cancel(CbPayment& p) {
    if (p.status == "succeeded") return Err(409, "CARRIER_BILLING.PAYMENT_CONFIRMED", "Payment already confirmed");
    if (p.status == "cancelled") return Err(409, "CARRIER_BILLING.PAYMENT_CANCELLED", "Payment already cancelled");
    const std::string msisdn = p.phone.substr(1);
    options_.balances[msisdn] = Balance(msisdn) + p.amount;  // release the reservation
    p.status = "cancelled";
    return Reply(202, Json::object());
  }

  // retrievePayments; the clientCorrelator filter is this server's (CAMARA lists filters by
  // date, status and merchant only). Without it: every payment.
  Decision ListPayments(const std::string& query) {
    std::string correlator;
    bool filtered = false;
    std::stringstream parts(query);
    for (std::string kv; std::getline(parts, kv, '&');) {
      if (kv.rfind("clientCorrelator=", 0) == 0) {
        correlator = PercentDecode(kv.substr(std::strlen("clientCorrelator=")));
        filtered = true;
      }
    }
    Json list = Json::array();
    if (filtered) {
      auto it = by_correlator_.find(correlator);
      if (it != by_correlator_.end()) list.push_back(PaymentJson(payments_.at(it->second)));
    } else {
      for (const auto& [id, p] : payments_) list.push_back(PaymentJson(p));
    }
    return Reply(200, list);
  }

  Json RefundJson(const CbRefund& r) const {
    return {{"refundId", r.id},
            {"refundStatus", r.status},
            {"type", r.type},
            {"refundCreationDate", r.created},
            {"refundDate", r.created},
            {"amountTransaction",
             {{"clientCorrelator", r.correlator},
              {"refundAmount", {{"chargingInformation", {{"amount", r.amount}, {"currency", "VND"}, {"description", "refund"}}}}}}}};
  }

  Decision CreateRefund(CbPayment& p, const std::string& body) {
    Json j = Json::parse(body, nullptr, false);
    CbRefund r;
    try {
      if (j.is_discarded() || !j.is_object()) throw std::runtime_error("body must be a JSON object");
      r.type = j.at("type").get<std::string>();
      if (r.type != "total" && r.type != "partial") throw std::runtime_error("type must be total or partial");
      const Json& at = j.at("amountTransaction");
      r.correlator = at.value("clientCorrelator", std::string());
      if (r.type == "partial") {
        const Json& ci = at.at("refundAmount").at("chargingInformation");
        if (ci.at("currency").get<std::string>() != "VND") throw std::runtime_error("currency must be VND");
        r.amount = static_cast<int64_t>(ci.at("amount").get<double>());
      } else {
        r.amount = p.amount - p.refunded;
      }
    } catch (const std::exception& e) {
      return Err(400, "INVALID_ARGUMENT", std::string("Client specified an invalid argument: ") + e.what());
    }
    if (!r.correlator.empty() && refund_correlators_.count(r.correlator)) {
      ++replays_refused_;
      return Err(409, "ALREADY_EXISTS", "clientCorrelator already exist on server");
    }
    if (p.status != "succeeded") return Err(422, "SERVICE_NOT_APPLICABLE", "payment is " + p.status + ", not refundable");
    if (r.amount <= 0 || r.amount > p.amount - p.refunded) {
      return Err(422, "CARRIER_BILLING.REFUND_AMOUNT_EXCEEDED", "refund exceeds the remaining amount");
    }
    p.refunded += r.amount;
    const std::string msisdn = p.phone.substr(1);
    options_.balances[msisdn] = Balance(msisdn) + r.amount;
    r.id = "ref-" + std::to_string(refunds_.size() + 1);
    r.status = "succeeded";
    r.created = NowIso8601();
    refunds_.push_back(DebitEntry{p.correlator, msisdn, r.amount, r.created});
    if (!r.correlator.empty()) refund_correlators_.insert(r.correlator);
    auto& stored = payment_refunds_[p.id];
    stored.push_back(std::move(r));
    return Reply(201, RefundJson(stored.back()));
  }

  Decision ListRefunds(const CbPayment& p) const {
    Json list = Json::array();
    if (auto it = payment_refunds_.find(p.id); it != payment_refunds_.end()) {
      for (const CbRefund& r : it->second) list.push_back(RefundJson(r));
    }
    return Reply(200, list);
  }

  std::map<std::string, CbPayment> payments_;          // by paymentId
  std::map<std::string, std::string> by_correlator_;   // clientCorrelator -> paymentId
  std::map<std::string, std::vector<CbRefund>> payment_refunds_;
  std::set<std::string> refund_correlators_;
  std::map<std::string, std::chrono::steady_clock::time_point> tokens_;  // access token -> expiry
  uint64_t tokens_issued_ = 0;
  uint64_t replays_refused_ = 0;
  uint64_t unauthorized_ = 0;
  uint64_t responses_lost_ = 0;  // answers dropped after processing (carrier_billing dialect)
  uint64_t responses_late_ = 0;  // answers delayed by timeout_delay_ms after processing

 public:
  // Requests held for their latency at once: how much concurrency a client really used.
  void HoldStarted() { max_in_flight_ = std::max(max_in_flight_, ++in_flight_); }
  void HoldEnded() { --in_flight_; }

 private:
  uint64_t in_flight_ = 0;
  uint64_t max_in_flight_ = 0;


  SimOptions& options_;
  std::mt19937_64 rng_;
  std::map<std::string, StoredCharge> charges_;
  std::vector<DebitEntry> debits_;
  std::vector<DebitEntry> refunds_;
};

namespace {

template <class Stream>
class Session : public std::enable_shared_from_this<Session<Stream>> {
 public:
  template <class... Args>
  Session(SimServer::State& state, Args&&... args) : state_(state), stream_(std::forward<Args>(args)...) {}

  void Start() {
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(10));
      stream_.async_handshake(ssl::stream_base::server, [self = this->shared_from_this()](beast::error_code ec) {
        if (ec) return;  // e.g. the client refused our certificate
        self->Read();
      });
    } else {
      Read();
    }
  }

 private:
  void Read() {
    parser_.emplace();
    parser_->body_limit(64 * 1024);
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(300));
    http::async_read(stream_, buffer_, *parser_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->Close();
      self->OnRequest();
    });
  }

  void OnRequest() {
    const auto& req = parser_->get();
    Decision d = state_.Handle(req);
    keep_alive_ = req.keep_alive();
    response_ = {};
    response_.version(req.version());
    response_.result(d.status);
    response_.set(http::field::content_type, "application/json");
    response_.set(http::field::server, "charging_sim");
    response_.keep_alive(keep_alive_);
    response_.body() = d.body.dump();
    response_.prepare_payload();
    if (d.drop) return Close();
    beast::get_lowest_layer(stream_).expires_never();
    if (d.delay_ms <= 0) return Write();
    timer_.emplace(stream_.get_executor(), std::chrono::milliseconds(d.delay_ms));
    state_.HoldStarted();
    timer_->async_wait([self = this->shared_from_this()](beast::error_code ec) {
      self->state_.HoldEnded();
      if (ec) return;
      self->Write();
    });
  }

  void Write() {
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(30));
    http::async_write(stream_, response_, [self = this->shared_from_this()](beast::error_code ec, size_t) {
      if (ec || !self->keep_alive_) return self->Close();
      self->Read();
    });
  }

  void Close() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream_).close();
  }

  SimServer::State& state_;
  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  std::optional<asio::steady_timer> timer_;
  bool keep_alive_ = true;
};

}  // namespace

SimServer::SimServer(asio::io_context& io, SimOptions options)
    : io_(io), options_(std::move(options)), state_(std::make_unique<State>(options_)), acceptor_(io) {}

SimServer::~SimServer() = default;

bool SimServer::Start(std::string* error) {
  beast::error_code ec;
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    ssl_ctx_.emplace(ssl::context::tls_server);
    ssl_ctx_->use_certificate_chain_file(options_.tls_cert_file, ec);
    if (!ec) ssl_ctx_->use_private_key_file(options_.tls_key_file, ssl::context::pem, ec);
    if (ec) {
      *error = "cannot load TLS certificate/key: " + ec.message();
      return false;
    }
  }
  auto address = asio::ip::make_address(options_.listen_host, ec);
  if (ec) {
    *error = "bad listen address " + options_.listen_host + ": " + ec.message();
    return false;
  }
  tcp::endpoint endpoint(address, options_.listen_port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    *error = "cannot listen on " + options_.listen_host + ":" + std::to_string(options_.listen_port) + ": " + ec.message();
    return false;
  }
  Accept();
  return true;
}

uint16_t SimServer::port() const { return acceptor_.local_endpoint().port(); }

const std::vector<DebitEntry>& SimServer::debits() const { return state_->debits(); }

void SimServer::Accept() {
  acceptor_.async_accept(io_, [this](beast::error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted) return;
    if (!ec) {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      if (ssl_ctx_) {
        std::make_shared<Session<beast::ssl_stream<beast::tcp_stream>>>(*state_, std::move(socket), *ssl_ctx_)->Start();
      } else {
        std::make_shared<Session<beast::tcp_stream>>(*state_, std::move(socket))->Start();
      }
    }
    Accept();
  });
}

bool SimServer::WriteDebitLog(const std::string& path, std::string* error) const {
  std::ofstream out(path, std::ios::trunc);
  if (!out) {
    *error = "cannot write " + path;
    return false;
  }
  out << "key,msisdn,amount,at\n";
  for (const auto& d : state_->debits()) out << d.key << ',' << d.msisdn << ',' << d.amount_vnd << ',' << d.at << '\n';
  out.flush();
  if (!out) {
    *error = "write failed: " + path;
    return false;
  }
  return true;
}

bool LoadBalances(const std::string& path, std::map<std::string, int64_t>* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read " + path;
    return false;
  }
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    line = Trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    for (char& c : line) {
      if (c == ',' || c == '\t' || c == ';') c = ' ';
    }
    std::istringstream fields(line);
    std::string msisdn, balance;
    fields >> msisdn >> balance;
    std::string extra;
    if (!AllDigits(msisdn) || balance.empty() || (fields >> extra)) {
      *error = path + ":" + std::to_string(n) + ": expected \"msisdn,balance\"";
      return false;
    }
    try {
      size_t used = 0;
      int64_t value = std::stoll(balance, &used);
      if (used != balance.size() || value < 0) throw std::invalid_argument("bad");
      (*out)[msisdn] = value;
    } catch (const std::exception&) {
      *error = path + ":" + std::to_string(n) + ": bad balance \"" + balance + "\"";
      return false;
    }
  }
  return true;
}

bool LoadBarred(const std::string& path, std::set<std::string>* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = "cannot read " + path;
    return false;
  }
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    line = Trim(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    if (!AllDigits(line)) {
      *error = path + ":" + std::to_string(n) + ": expected one msisdn per line";
      return false;
    }
    out->insert(line);
  }
  return true;
}

}  // namespace donagate::charging_sim
