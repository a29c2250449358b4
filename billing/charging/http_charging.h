// The HTTP/JSON charging backend: talks to an operator's charging API (or to an adapter in
// front of it, or to tools/charging_sim) using the contract in docs/charging.md.
//
//  - HTTP/1.1 over Boost.Beast, keep-alive connections reused from a pool; at most
//    max_concurrency requests in flight, up to max_queue more wait their turn (beyond that:
//    kUnavailable at once).
//  - Optional TLS ("https://" URL). Certificate verification is ON by default: the chain must
//    verify against ca_file (or the system store) and the name against server_name (default:
//    the URL host, also sent as SNI). tls_verify = false exists for lab setups only.
//  - timeout covers one attempt (connect + TLS + write + read).
//  - Retries always reuse the request's idempotency key (the body and path are identical):
//      * failure before the request was fully written (connect refused, TLS, broken pipe)
//        → retried up to `retries` times, then kUnavailable (nothing was sent);
//      * a reused keep-alive connection closed by the server without any answer → retried once
//        on a fresh connection (the usual stale-connection race; safe because of the key);
//      * HTTP 5xx → retried up to `retries` times, then kUnknown; 408/429 → then kUnavailable;
//      * timeout or connection loss AFTER the request was written → kUnknown at once, no retry:
//        the donation charger resolves it with Status().
//  - "Authorization: Bearer <token>" when a token is configured; the token is never logged or
//    put into a result detail.
// Threads: as ChargingBackend (callbacks on the executor given to Create). Internally all
// connection state lives on one strand of that executor.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "billing/charging/charging.h"

namespace donagate::billing {

struct HttpChargingOptions {
  std::string operator_name;                 // for Name() and logs
  std::string url;                           // http://host[:port][/prefix] or https://...
  std::chrono::milliseconds timeout{3000};   // per attempt
  int max_concurrency = 16;                  // requests in flight (= max open connections)
  size_t max_queue = 100000;                 // waiting requests beyond max_concurrency
  int retries = 2;                           // extra attempts for retryable failures
  std::chrono::milliseconds retry_backoff{50};  // doubled per retry
  std::string bearer_token;                  // empty: no Authorization header
  bool tls_verify = true;
  std::string ca_file;                       // empty: system trust store
  std::string server_name;                   // SNI + certificate name; empty: URL host
};

class HttpChargingBackend final : public ChargingBackend {
 public:
  struct Stats {
    uint64_t requests = 0;       // attempts written or tried
    uint64_t retries = 0;
    uint64_t timeouts = 0;       // attempts that timed out
    uint64_t connections_opened = 0;
    uint64_t in_flight = 0;
    uint64_t queued = 0;
  };

  // nullptr and *error set when the options are unusable (bad URL, unreadable ca_file).
  static std::unique_ptr<HttpChargingBackend> Create(boost::asio::any_io_executor executor,
                                                     HttpChargingOptions options, std::string* error);
  ~HttpChargingBackend() override;  // closes idle connections; in-flight calls still complete

  std::string_view Name() const override;
  void Charge(const ChargeRequest& request, ChargeCallback done) override;
  void Status(const std::string& idempotency_key, ChargeCallback done) override;
  bool SupportsRefund() const override { return true; }
  void Refund(const std::string& idempotency_key, int64_t amount_vnd, RefundCallback done) override;

  Stats stats() const;

  class Impl;

 private:
  explicit HttpChargingBackend(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

}  // namespace donagate::billing
