// The Carrier Billing charging backend: the GSMA Open Gateway / CAMARA Carrier Billing API
// (camaraproject/CarrierBillingCheckOut, carrier-billing.yaml and carrier-billing-refund.yaml),
// with the CAMARA field names. Mapping of statuses and HTTP codes: docs/charging.md.
//
//  - One-step (default): POST {url}/payments (createPayment) with amountTransaction
//    {phoneNumber "+84…", clientCorrelator = our idempotency key, referenceCode = the key,
//    paymentAmount.chargingInformation {amount, currency "VND", description}}.
//  - Two-step (two_step = true, where the operator requires it): POST {url}/payments/prepare
//    (preparePayment → "reserved"), then POST {url}/payments/{paymentId}/confirm and a
//    retrievePayment of that id to read the final paymentStatus. A reservation that cannot be
//    confirmed for a business reason is cancelled (POST {url}/payments/{paymentId}/cancel).
//  - OAuth 2.0 client credentials (RFC 6749 §4.4) against token_url, HTTP Basic client
//    authentication; the token is refreshed before it expires (refresh_margin before
//    expires_in runs out) and once more on a 401, after which the request is repeated once.
//    Neither token nor client secret is ever logged or put into a result detail.
//  - Unknown outcome (timeout or connection lost after the request was written, HTTP 5xx,
//    409 "clientCorrelator already exists") → kUnknown. It is resolved by Status(key), which
//    retrieves the payment by clientCorrelator (GET {url}/payments?clientCorrelator=key) —
//    never by a new payment: a server that refuses a replayed clientCorrelator (as CAMARA
//    servers do) is thereby handled the same as one that answers it.
//  - Status finding a payment still "reserved" (two-step, confirm lost) confirms it: that is
//    the charge the donor asked for under the same clientCorrelator, not a new one.
//  - Refund: the payment is found by clientCorrelator, then POST
//    {url}/payments/{paymentId}/refunds (createRefund, type total/partial) with clientCorrelator
//    "<key>-refund"; a replay refused with 409 is answered from retrieveRefunds.
//  - HTTP/1.1 over Boost.Beast, keep-alive connection pools (one for the API, one for the token
//    endpoint), TLS verified by default (system store or ca_file; tls_verify = false for labs).
//    A failure before the request was written is retried up to `retries` times (nothing was
//    sent); nothing written is ever retried except the usual stale keep-alive race and the one
//    repeat after a 401.
// Threads: as ChargingBackend. All state lives on one strand of the executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "billing/charging/charging.h"

namespace donagate::billing {

struct CarrierBillingOptions {
  std::string operator_name;                   // for Name() and logs
  std::string url;                             // API root incl. version, e.g. https://h/carrier-billing/v0.4
  std::string token_url;                       // OAuth 2.0 token endpoint (http:// or https://)
  std::string client_id;
  std::string client_secret;
  std::string scope;                           // empty: no scope parameter
  bool two_step = false;                       // prepare → confirm instead of createPayment
  std::string merchant_identifier;             // chargingMetaData.merchantIdentifier (optional)
  std::string description = "donation";        // chargingInformation.description prefix; campaign appended
  std::chrono::milliseconds timeout{3000};     // per HTTP attempt
  int max_concurrency = 16;                    // requests in flight to the API
  int retries = 2;                             // retries of requests that were not sent
  std::chrono::milliseconds refresh_margin{30000};  // refresh the token this long before expiry
  bool tls_verify = true;
  std::string ca_file;                         // empty: system trust store
};

class CarrierBillingChargingBackend final : public ChargingBackend {
 public:
  struct Stats {
    uint64_t requests = 0;        // API attempts written or tried
    uint64_t token_requests = 0;  // token endpoint calls
    uint64_t token_refreshes_on_401 = 0;
    uint64_t timeouts = 0;
    uint64_t retrievals = 0;      // payments retrieved by clientCorrelator (Status)
    uint64_t token_failures = 0;  // token endpoint calls that gave no usable token
  };

  // nullptr and *error when the options are unusable (bad URL, unreadable ca_file, no client id).
  static std::unique_ptr<CarrierBillingChargingBackend> Create(boost::asio::any_io_executor executor,
                                                               CarrierBillingOptions options, std::string* error);
  ~CarrierBillingChargingBackend() override;

  std::string_view Name() const override;
  void Charge(const ChargeRequest& request, ChargeCallback done) override;
  void Status(const std::string& idempotency_key, ChargeCallback done) override;
  bool SupportsRefund() const override { return true; }
  void Refund(const std::string& idempotency_key, int64_t amount_vnd, RefundCallback done) override;

  // donagatectl charging-check: obtains a token and retrieves a clientCorrelator that no
  // donation has. ok when the token was granted and the API answered "not found".
  struct ProbeResult {
    bool ok = false;
    std::string detail;
  };
  void Probe(std::function<void(ProbeResult)> done);

  Stats stats() const;
  // stats() as a callable that keeps the backend's state alive on its own (for an exporter that
  // may outlive this object by a timer tick).
  std::function<Stats()> StatsSource() const;

  class Impl;

 private:
  explicit CarrierBillingChargingBackend(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace donagate::billing
