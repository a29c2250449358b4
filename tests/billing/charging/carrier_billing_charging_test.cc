// CarrierBillingChargingBackend against the real simulator process (tools/charging_sim
// --dialect carrier_billing, which shares no code with the client): every outcome, lost and
// timed-out responses resolved by retrieval by clientCorrelator and charged exactly once (the
// simulator refuses a replayed clientCorrelator), OAuth tokens refreshed before expiry and on a
// 401, the two-step prepare → confirm flow with a lost answer, refunds, the probe, and TLS
// verification.
#include "billing/charging/carrier_billing_charging.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <thread>

#include "tests/common/test_env.h"
#include "tools/charging_sim/sim_process.h"

namespace donagate::billing {
namespace {

using donagate::testing::BinaryPath;
using donagate::testing::ChargingSimProcess;
using donagate::testing::FreeTcpPort;
using donagate::testing::MakeTempDir;
using Json = nlohmann::json;
using namespace std::chrono_literals;

class IoThread {
 public:
  IoThread() : guard_(io_.get_executor()), thread_([this] { io_.run(); }) {}
  ~IoThread() {
    guard_.reset();
    io_.stop();
    thread_.join();
  }
  boost::asio::any_io_executor executor() { return io_.get_executor(); }

 private:
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> guard_;
  std::thread thread_;
};

ChargeRequest Request(std::string key, int64_t amount = 20000, std::string msisdn = "84912345678") {
  ChargeRequest r;
  r.idempotency_key = std::move(key);
  r.msisdn = std::move(msisdn);
  r.operator_name = "mobifone";
  r.amount_vnd = amount;
  r.units = 1;
  r.campaign = "flood-relief";
  return r;
}

class CarrierBillingTest : public ::testing::Test {
 protected:
  void StartSim(std::vector<std::string> args = {}, bool tls = false) {
    args.insert(args.begin(), {"--dialect", "carrier_billing", "--client-id", "donagate", "--client-secret", "s3cr:t"});
    sim_ = std::make_unique<ChargingSimProcess>(BinaryPath("tools/charging_sim/charging_sim"), FreeTcpPort(),
                                                std::move(args), tls);
  }

  CarrierBillingOptions Options() {
    CarrierBillingOptions o;
    o.operator_name = "mobifone";
    o.url = sim_->url() + "/carrier-billing/v0.4";
    o.token_url = sim_->url() + "/oauth/token";
    o.client_id = "donagate";
    o.client_secret = "s3cr:t";  // ':' must be form-encoded before Basic (RFC 6749 §2.3.1)
    o.scope = "carrier-billing:payments:create carrier-billing:payments:read";
    o.timeout = 1000ms;
    return o;
  }

  std::unique_ptr<CarrierBillingChargingBackend> MakeBackend(CarrierBillingOptions o) {
    std::string error;
    auto backend = CarrierBillingChargingBackend::Create(io_.executor(), std::move(o), &error);
    EXPECT_TRUE(backend) << error;
    return backend;
  }
  std::unique_ptr<CarrierBillingChargingBackend> MakeBackend() { return MakeBackend(Options()); }

  ChargeResult Charge(ChargingBackend& backend, const ChargeRequest& request) {
    std::promise<ChargeResult> p;
    backend.Charge(request, [&p](ChargeResult r) { p.set_value(std::move(r)); });
    auto f = p.get_future();
    EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
    return f.get();
  }

  ChargeResult Status(ChargingBackend& backend, const std::string& key) {
    std::promise<ChargeResult> p;
    backend.Status(key, [&p](ChargeResult r) { p.set_value(std::move(r)); });
    auto f = p.get_future();
    EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
    return f.get();
  }

  RefundResult Refund(ChargingBackend& backend, const std::string& key, int64_t amount) {
    std::promise<RefundResult> p;
    backend.Refund(key, amount, [&p](RefundResult r) { p.set_value(std::move(r)); });
    auto f = p.get_future();
    EXPECT_EQ(f.wait_for(10s), std::future_status::ready);
    return f.get();
  }

  // What the donation charger does with one key: charge; while unknown ask Status; on
  // not-found send the same charge again. Returns the final result.
  ChargeResult ChargeUntilFinal(ChargingBackend& backend, const ChargeRequest& request) {
    ChargeResult r = Charge(backend, request);
    for (int round = 0; round < 50 && !IsFinal(r.outcome); ++round) {
      if (r.outcome == ChargeOutcome::kNotFound || r.outcome == ChargeOutcome::kUnavailable) {
        r = Charge(backend, request);
      } else {
        std::this_thread::sleep_for(20ms);
        r = Status(backend, request.idempotency_key);
      }
    }
    return r;
  }

  Json SimStats() const { return sim_->Request(boost::beast::http::verb::get, "/v1/admin/stats").body; }

  IoThread io_;
  std::unique_ptr<ChargingSimProcess> sim_;
};

TEST_F(CarrierBillingTest, CreatePaymentChargesOnceAndRetrievalReturnsTheSamePayment) {
  StartSim({"--default-balance", "100000"});
  auto backend = MakeBackend();
  ChargeResult r = Charge(*backend, Request("don-1", 20000));
  ASSERT_EQ(r.outcome, ChargeOutcome::kCharged) << r.detail;
  EXPECT_EQ(r.operator_reference.rfind("pay-", 0), 0u) << r.operator_reference;  // the paymentId
  EXPECT_EQ(sim_->Balance("84912345678"), 80000);

  // The same clientCorrelator again is refused by the server, never answered or re-debited:
  // the outcome is unknown until retrieval says what happened.
  ChargeResult again = Charge(*backend, Request("don-1", 20000));
  EXPECT_EQ(again.outcome, ChargeOutcome::kUnknown) << again.detail;
  EXPECT_NE(again.detail.find("ALREADY_EXISTS"), std::string::npos) << again.detail;
  ChargeResult status = Status(*backend, "don-1");
  EXPECT_EQ(status.outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(status.operator_reference, r.operator_reference);
  EXPECT_EQ(sim_->DebitsFor("don-1"), 1);
  EXPECT_EQ(sim_->Balance("84912345678"), 80000);
  EXPECT_EQ(SimStats()["replays_refused"], 1);

  EXPECT_EQ(Status(*backend, "don-never-sent").outcome, ChargeOutcome::kNotFound);
  // One token served every call.
  EXPECT_EQ(SimStats()["tokens_issued"], 1);
  EXPECT_EQ(backend->stats().token_requests, 1u);
}

TEST_F(CarrierBillingTest, BusinessOutcomesMapToOurs) {
  const std::string dir = MakeTempDir("cb-barred");
  { std::ofstream(dir + "/barred") << "84900000002\n"; }
  StartSim({"--default-balance", "10000", "--barred", dir + "/barred"});
  auto backend = MakeBackend();
  ChargeResult poor = Charge(*backend, Request("don-poor", 20000, "84900000001"));
  EXPECT_EQ(poor.outcome, ChargeOutcome::kInsufficientFunds) << poor.detail;
  EXPECT_NE(poor.detail.find("USER_AMOUNT_THRESHOLD_OVERPASSED"), std::string::npos);
  ChargeResult barred = Charge(*backend, Request("don-barred", 5000, "84900000002"));
  EXPECT_EQ(barred.outcome, ChargeOutcome::kSubscriberBarred) << barred.detail;
  EXPECT_FALSE(barred.backend_failure);
  // The simulator's message names the line; our detail (logs, failure reason) must not.
  EXPECT_EQ(barred.detail.find("84900000002"), std::string::npos) << barred.detail;
  EXPECT_NE(barred.detail.find("line <number> may not"), std::string::npos) << barred.detail;
  // Errors create no payment: retrieval says so, so the same charge may be sent again.
  EXPECT_EQ(Status(*backend, "don-poor").outcome, ChargeOutcome::kNotFound);
  // Invalid requests never leave the process.
  EXPECT_EQ(Charge(*backend, Request("bad key with spaces")).outcome, ChargeOutcome::kRejected);
  EXPECT_EQ(Charge(*backend, Request("don-zero", 0)).outcome, ChargeOutcome::kRejected);
  EXPECT_EQ(sim_->Debits()["debits"].size(), 0u);
}

TEST_F(CarrierBillingTest, ServerErrorsAreUnknownAndUnreachableIsUnavailable) {
  StartSim();
  auto backend = MakeBackend();
  ASSERT_TRUE(sim_->SetConfig({{"fail_rate", 1.0}}));
  ChargeResult r = Charge(*backend, Request("don-503"));
  EXPECT_EQ(r.outcome, ChargeOutcome::kUnknown) << r.detail;  // 5xx after send: maybe
  EXPECT_TRUE(r.backend_failure);
  EXPECT_EQ(Status(*backend, "don-503").outcome, ChargeOutcome::kUnknown);  // retrieval failed too
  ASSERT_TRUE(sim_->SetConfig({{"fail_rate", 0.0}}));
  EXPECT_EQ(Status(*backend, "don-503").outcome, ChargeOutcome::kNotFound);
  EXPECT_EQ(ChargeUntilFinal(*backend, Request("don-503")).outcome, ChargeOutcome::kCharged);

  // Nothing listening: not sent, so kUnavailable (safe to send again).
  CarrierBillingOptions o = Options();
  o.url = "http://127.0.0.1:" + std::to_string(FreeTcpPort()) + "/carrier-billing/v0.4";
  o.retries = 1;
  auto dead = MakeBackend(o);
  EXPECT_EQ(Charge(*dead, Request("don-dead")).outcome, ChargeOutcome::kUnavailable);
}

TEST_F(CarrierBillingTest, LostAndLateResponsesAreResolvedByRetrievalAndChargedExactlyOnce) {
  StartSim({"--default-balance", "100000000", "--seed", "7"});
  ASSERT_TRUE(sim_->SetConfig({{"lost_response_rate", 0.3}, {"timeout_rate", 0.1}, {"timeout_delay_ms", 1500}}));
  auto backend = MakeBackend();
  int charged = 0;
  for (int i = 0; i < 120; ++i) {
    ChargeResult r = ChargeUntilFinal(*backend, Request("don-lost-" + std::to_string(i), 10000));
    ASSERT_EQ(r.outcome, ChargeOutcome::kCharged) << i << ": " << r.detail;
    charged += 1;
  }
  EXPECT_EQ(charged, 120);
  const Json log = sim_->Debits();
  ASSERT_EQ(log["debits"].size(), 120u);
  std::map<std::string, int> per_key;
  for (const auto& d : log["debits"]) per_key[d["key"]] += 1;
  for (const auto& [key, n] : per_key) EXPECT_EQ(n, 1) << key;
  EXPECT_EQ(sim_->Balance("84912345678"), 100000000 - 120 * 10000);
  // The faults really happened and were resolved through retrieval, not replays.
  EXPECT_GT(backend->stats().retrievals, 20u);
  EXPECT_GT(backend->stats().timeouts, 0u);
}

TEST_F(CarrierBillingTest, TokenIsRefreshedBeforeExpiryAndOnceOnA401) {
  StartSim({"--token-lifetime-s", "2"});
  CarrierBillingOptions o = Options();
  o.refresh_margin = 30s;  // capped at half the 2 s lifetime
  auto backend = MakeBackend(o);
  const auto until = std::chrono::steady_clock::now() + 4500ms;
  int i = 0;
  while (std::chrono::steady_clock::now() < until) {
    ChargeResult r = Charge(*backend, Request("don-tok-" + std::to_string(i++), 1000));
    ASSERT_EQ(r.outcome, ChargeOutcome::kCharged) << r.detail;
    std::this_thread::sleep_for(50ms);
  }
  Json stats = SimStats();
  EXPECT_GE(stats["tokens_issued"].get<int>(), 3) << stats.dump();
  EXPECT_EQ(stats["unauthorized"], 0) << "refreshed before expiry, never presented an expired token";

  // The server forgets every token (revocation, restart): one 401, one refresh, one repeat.
  ASSERT_TRUE(sim_->SetConfig({{"revoke_tokens", true}}));
  ChargeResult r = Charge(*backend, Request("don-after-revoke", 1000));
  EXPECT_EQ(r.outcome, ChargeOutcome::kCharged) << r.detail;
  EXPECT_EQ(backend->stats().token_refreshes_on_401, 1u);
  EXPECT_EQ(sim_->DebitsFor("don-after-revoke"), 1);
  EXPECT_EQ(SimStats()["unauthorized"], 1);
}

TEST_F(CarrierBillingTest, WrongClientSecretChargesNobody) {
  StartSim();
  CarrierBillingOptions o = Options();
  o.client_secret = "wrong";
  auto backend = MakeBackend(o);
  ChargeResult r = Charge(*backend, Request("don-noauth"));
  EXPECT_EQ(r.outcome, ChargeOutcome::kUnavailable) << r.detail;
  EXPECT_NE(r.detail.find("invalid_client"), std::string::npos) << r.detail;
  EXPECT_EQ(r.detail.find("wrong"), std::string::npos) << "secret leaked into the detail";
  // Status cannot ask either: the key stays unresolved, never "not found".
  EXPECT_EQ(Status(*backend, "don-noauth").outcome, ChargeOutcome::kUnavailable);
  EXPECT_EQ(sim_->Debits()["debits"].size(), 0u);
}

TEST_F(CarrierBillingTest, TwoStepPreparesConfirmsAndFinishesALostConfirmThroughRetrieval) {
  StartSim({"--default-balance", "50000"});
  CarrierBillingOptions o = Options();
  o.two_step = true;
  auto backend = MakeBackend(o);
  ChargeResult r = Charge(*backend, Request("don-2s", 20000));
  ASSERT_EQ(r.outcome, ChargeOutcome::kCharged) << r.detail;
  EXPECT_EQ(sim_->DebitsFor("don-2s"), 1);
  EXPECT_EQ(sim_->Balance("84912345678"), 30000);

  // Every answer lost: preparePayment reserved the amount, nobody heard of it.
  ASSERT_TRUE(sim_->SetConfig({{"lost_response_rate", 1.0}}));
  ChargeResult lost = Charge(*backend, Request("don-2s-lost", 10000));
  EXPECT_EQ(lost.outcome, ChargeOutcome::kUnknown) << lost.detail;
  EXPECT_EQ(sim_->DebitsFor("don-2s-lost"), 0);  // reserved, not debited
  ASSERT_TRUE(sim_->SetConfig({{"lost_response_rate", 0.0}}));
  // Retrieval finds it "reserved" and confirms that same payment.
  ChargeResult resolved = Status(*backend, "don-2s-lost");
  EXPECT_EQ(resolved.outcome, ChargeOutcome::kCharged) << resolved.detail;
  EXPECT_EQ(sim_->DebitsFor("don-2s-lost"), 1);
  EXPECT_EQ(Status(*backend, "don-2s-lost").outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(sim_->DebitsFor("don-2s-lost"), 1);
  EXPECT_EQ(sim_->Balance("84912345678"), 20000);

  ChargeResult poor = Charge(*backend, Request("don-2s-poor", 90000));
  EXPECT_EQ(poor.outcome, ChargeOutcome::kInsufficientFunds) << poor.detail;
  EXPECT_EQ(sim_->Balance("84912345678"), 20000);
}

TEST_F(CarrierBillingTest, RefundsArePartialOrTotalAndAtMostOncePerKey) {
  StartSim({"--default-balance", "100000"});
  auto backend = MakeBackend();
  ASSERT_EQ(Charge(*backend, Request("don-r1", 20000)).outcome, ChargeOutcome::kCharged);
  RefundResult partial = Refund(*backend, "don-r1", 5000);
  EXPECT_EQ(partial.outcome, RefundOutcome::kRefunded) << partial.detail;
  EXPECT_EQ(sim_->Balance("84912345678"), 85000);
  // Repeating it: the server refuses the replayed refund clientCorrelator; the earlier refund
  // is found in retrieveRefunds and reported, nothing is paid twice.
  RefundResult again = Refund(*backend, "don-r1", 5000);
  EXPECT_EQ(again.outcome, RefundOutcome::kRefunded) << again.detail;
  EXPECT_EQ(sim_->Balance("84912345678"), 85000);

  ASSERT_EQ(Charge(*backend, Request("don-r2", 10000)).outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(Refund(*backend, "don-r2", 10000).outcome, RefundOutcome::kRefunded);  // type total
  EXPECT_EQ(sim_->Balance("84912345678"), 85000);
  EXPECT_EQ(sim_->Debits()["refunds"].size(), 2u);

  EXPECT_EQ(Refund(*backend, "don-never", 1000).outcome, RefundOutcome::kNotFound);
  ASSERT_EQ(Charge(*backend, Request("don-r3", 10000)).outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(Refund(*backend, "don-r3", 10001).outcome, RefundOutcome::kRejected);
}

TEST_F(CarrierBillingTest, ProbeGetsATokenAndChargesNobody) {
  StartSim();
  auto backend = MakeBackend();
  std::promise<CarrierBillingChargingBackend::ProbeResult> p;
  backend->Probe([&p](CarrierBillingChargingBackend::ProbeResult r) { p.set_value(std::move(r)); });
  auto f = p.get_future();
  ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
  auto r = f.get();
  EXPECT_TRUE(r.ok) << r.detail;
  EXPECT_NE(r.detail.find("not_found"), std::string::npos) << r.detail;
  EXPECT_EQ(sim_->Debits()["debits"].size(), 0u);
  EXPECT_EQ(SimStats()["payments"], 0);

  CarrierBillingOptions o = Options();
  o.client_secret = "wrong";
  auto bad = MakeBackend(o);
  std::promise<CarrierBillingChargingBackend::ProbeResult> q;
  bad->Probe([&q](CarrierBillingChargingBackend::ProbeResult r) { q.set_value(std::move(r)); });
  auto g = q.get_future();
  ASSERT_EQ(g.wait_for(10s), std::future_status::ready);
  EXPECT_FALSE(g.get().ok);
}

class CarrierBillingTlsTest : public CarrierBillingTest {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "openssl CLI not installed";
    dir_ = MakeTempDir("cb-tls");
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                      "-addext subjectAltName=IP:127.0.0.1 -keyout " + dir_ + "/key.pem -out " + dir_ +
                      "/cert.pem >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    StartSim({"--tls-cert", dir_ + "/cert.pem", "--tls-key", dir_ + "/key.pem"}, /*tls=*/true);
  }
  std::string dir_;
};

TEST_F(CarrierBillingTlsTest, VerifiedByDefaultAndTrustedWithCaFile) {
  auto strict = MakeBackend();
  ChargeResult refused = Charge(*strict, Request("don-tls-1"));
  EXPECT_EQ(refused.outcome, ChargeOutcome::kUnavailable) << refused.detail;
  EXPECT_NE(refused.detail.find("certificate verify failed"), std::string::npos) << refused.detail;

  CarrierBillingOptions o = Options();
  o.ca_file = dir_ + "/cert.pem";
  auto trusting = MakeBackend(o);
  ChargeResult r = Charge(*trusting, Request("don-tls-2"));
  EXPECT_EQ(r.outcome, ChargeOutcome::kCharged) << r.detail;
  EXPECT_EQ(sim_->DebitsFor("don-tls-2"), 1);
}

// Throughput on loopback (disabled: a figure for docs/charging.md, not a check). Run with
// --gtest_also_run_disabled_tests; CB_BENCH_LATENCY_MS sets the simulator's latency.
TEST_F(CarrierBillingTest, DISABLED_ThroughputOnLoopback) {
  const char* latency = std::getenv("CB_BENCH_LATENCY_MS");
  StartSim({"--default-balance", "1000000000000", "--latency-ms", latency ? latency : "0"});
  CarrierBillingOptions o = Options();
  o.max_concurrency = 256;
  o.timeout = 10s;
  auto backend = MakeBackend(o);
  ASSERT_EQ(Charge(*backend, Request("don-warm", 1000)).outcome, ChargeOutcome::kCharged);
  constexpr int kCharges = 20000;
  std::atomic<int> done{0}, charged{0};
  std::promise<void> all;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kCharges; ++i) {
    backend->Charge(Request("don-b-" + std::to_string(i), 1000), [&](ChargeResult r) {
      if (r.outcome == ChargeOutcome::kCharged) ++charged;
      if (++done == kCharges) all.set_value();
    });
  }
  ASSERT_EQ(all.get_future().wait_for(300s), std::future_status::ready);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(charged.load(), kCharges);
  std::printf("carrier_billing: %d charges in %.2f s = %.0f charges/s (max_concurrency %d, sim latency %s ms)\n",
              kCharges, s, kCharges / s, o.max_concurrency, latency ? latency : "0");
}

}  // namespace
}  // namespace donagate::billing
