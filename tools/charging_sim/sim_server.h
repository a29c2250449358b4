// The charging simulator's server: the HTTP/JSON contract of docs/charging.md over Beast, with
// per-MSISDN balances, idempotency keys, an append-only debit log and fault injection. Runs on
// one io_context thread; all state is touched only from that thread.
//
// dialect = carrier_billing: instead of /v1/charges it serves the CAMARA Carrier Billing API
// under /carrier-billing/v0.4 (createPayment, preparePayment, confirmPayment, cancelPayment,
// retrievePayment, retrievePayments with a clientCorrelator filter, createRefund,
// retrieveRefunds) and an OAuth 2.0 client-credentials token endpoint at /oauth/token whose
// tokens expire after token_lifetime_s. As CAMARA servers may, it REFUSES a replayed
// clientCorrelator (409 ALREADY_EXISTS) instead of answering with the first result, so a
// client can only learn an unknown outcome by retrieving the payment. Errors create no
// payment (paymentId is not created "in case of any error scenario"). The admin endpoints
// (/v1/admin/*, /v1/debits) are the same in both dialects and need no OAuth token.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace donagate::charging_sim {

struct FaultRates {
  double fail_rate = 0;           // answer 503 without processing (all /v1/charges* calls)
  double timeout_rate = 0;        // POST charge: process, then answer only after timeout_delay_ms
  double lost_response_rate = 0;  // POST charge: process (debit), then close without answering
  int latency_ms = 0;             // added before every /v1/charges* answer
  int timeout_delay_ms = 30000;
};

enum class Dialect { kHttp, kCarrierBilling };

struct SimOptions {
  Dialect dialect = Dialect::kHttp;
  // carrier_billing: the OAuth client allowed to get tokens, and their lifetime.
  std::string client_id = "donagate";
  std::string client_secret = "secret";
  int token_lifetime_s = 3600;
  std::string listen_host = "127.0.0.1";
  uint16_t listen_port = 8088;
  int64_t default_balance_vnd = 1000000;
  std::map<std::string, int64_t> balances;
  std::set<std::string> barred;
  FaultRates rates;
  uint64_t seed = 1;
  std::string token;              // empty: no auth
  std::string tls_cert_file;      // both set: serve HTTPS
  std::string tls_key_file;
};

struct DebitEntry {
  std::string key;
  std::string msisdn;
  int64_t amount_vnd = 0;  // positive for debits; refunds are listed separately
  std::string at;          // ISO 8601 UTC
};

class SimServer {
 public:
  SimServer(boost::asio::io_context& io, SimOptions options);
  ~SimServer();
  // Binds and starts accepting; false and *error on failure.
  bool Start(std::string* error);
  uint16_t port() const;
  const std::vector<DebitEntry>& debits() const;
  // CSV "key,msisdn,amount,at" with a header line.
  bool WriteDebitLog(const std::string& path, std::string* error) const;

  class State;

 private:
  boost::asio::io_context& io_;
  SimOptions options_;
  std::unique_ptr<State> state_;
  std::optional<boost::asio::ssl::context> ssl_ctx_;
  boost::asio::ip::tcp::acceptor acceptor_;
  void Accept();
};

// Loaders for --balances (lines "msisdn,balance" or "msisdn balance"; '#' comments) and
// --barred (one msisdn per line). false and *error with file:line on bad input.
bool LoadBalances(const std::string& path, std::map<std::string, int64_t>* out, std::string* error);
bool LoadBarred(const std::string& path, std::set<std::string>* out, std::string* error);

}  // namespace donagate::charging_sim
