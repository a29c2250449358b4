// HttpChargingBackend against the real charging simulator process (tools/charging_sim):
// every outcome of the contract, retries, timeouts and lost responses resolved by Status,
// keep-alive reuse, bounded concurrency, refunds, bearer auth and TLS verification.
#include "billing/charging/http_charging.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <cstdlib>
#include <fstream>
#include <future>
#include <thread>

#include "tests/common/test_env.h"
#include "tools/charging_sim/sim_process.h"

namespace donagate::billing {
namespace {

using donagate::testing::BinaryPath;
using donagate::testing::ChargingSimProcess;
using donagate::testing::FreeTcpPort;
using donagate::testing::MakeTempDir;
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

std::string SimBinary() { return BinaryPath("tools/charging_sim/charging_sim"); }

ChargeRequest Request(std::string key, int64_t amount = 20000, std::string msisdn = "84912345678") {
  ChargeRequest r;
  r.idempotency_key = std::move(key);
  r.msisdn = std::move(msisdn);
  r.operator_name = "viettel";
  r.amount_vnd = amount;
  r.units = 1;
  r.campaign = "flood-relief";
  return r;
}

class HttpChargingTest : public ::testing::Test {
 protected:
  void StartSim(std::vector<std::string> args = {}, bool tls = false) {
    sim_ = std::make_unique<ChargingSimProcess>(SimBinary(), FreeTcpPort(), std::move(args), tls);
  }

  std::unique_ptr<HttpChargingBackend> MakeBackend(HttpChargingOptions options = {}) {
    options.operator_name = "viettel";
    if (options.url.empty()) options.url = sim_->url();
    if (options.timeout == 3000ms) options.timeout = 2000ms;
    options.retry_backoff = 5ms;
    std::string error;
    auto backend = HttpChargingBackend::Create(io_.executor(), options, &error);
    EXPECT_TRUE(backend) << error;
    return backend;
  }

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

  IoThread io_;
  std::unique_ptr<ChargingSimProcess> sim_;
};

TEST_F(HttpChargingTest, ChargedDebitsOnceAndStatusReturnsTheSameReference) {
  StartSim({"--default-balance", "100000"});
  auto backend = MakeBackend();
  ChargeResult r = Charge(*backend, Request("don-1", 20000));
  ASSERT_EQ(r.outcome, ChargeOutcome::kCharged) << r.detail;
  EXPECT_FALSE(r.operator_reference.empty());
  EXPECT_EQ(sim_->Balance("84912345678"), 80000);

  // A retry with the same key is answered from the stored result: no second debit.
  ChargeResult again = Charge(*backend, Request("don-1", 20000));
  EXPECT_EQ(again.outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(again.operator_reference, r.operator_reference);
  EXPECT_EQ(sim_->DebitsFor("don-1"), 1);
  EXPECT_EQ(sim_->Balance("84912345678"), 80000);

  ChargeResult status = Status(*backend, "don-1");
  EXPECT_EQ(status.outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(status.operator_reference, r.operator_reference);
  EXPECT_EQ(Status(*backend, "don-never-sent").outcome, ChargeOutcome::kNotFound);
}

TEST_F(HttpChargingTest, InsufficientFundsAndBarredAreBusinessAnswers) {
  std::string dir = MakeTempDir("http-charging");
  std::ofstream(dir + "/barred.txt") << "# barred subscribers\n84900000001\n";
  StartSim({"--default-balance", "10000", "--barred", dir + "/barred.txt"});
  auto backend = MakeBackend();

  ChargeResult poor = Charge(*backend, Request("don-2", 20000));
  EXPECT_EQ(poor.outcome, ChargeOutcome::kInsufficientFunds) << poor.detail;
  EXPECT_FALSE(poor.backend_failure);
  EXPECT_EQ(Status(*backend, "don-2").outcome, ChargeOutcome::kInsufficientFunds);

  ChargeResult barred = Charge(*backend, Request("don-3", 5000, "84900000001"));
  EXPECT_EQ(barred.outcome, ChargeOutcome::kSubscriberBarred) << barred.detail;
  EXPECT_FALSE(barred.backend_failure);
  EXPECT_EQ(Status(*backend, "don-3").outcome, ChargeOutcome::kSubscriberBarred);
  EXPECT_EQ(sim_->Debits()["debits"].size(), 0u);
}

TEST_F(HttpChargingTest, SameKeyWithDifferentParametersIsRejected) {
  StartSim();
  auto backend = MakeBackend();
  ASSERT_EQ(Charge(*backend, Request("don-4", 20000)).outcome, ChargeOutcome::kCharged);
  ChargeResult conflict = Charge(*backend, Request("don-4", 40000));
  EXPECT_EQ(conflict.outcome, ChargeOutcome::kRejected);
  EXPECT_NE(conflict.detail.find("conflict"), std::string::npos) << conflict.detail;
  EXPECT_EQ(sim_->DebitsFor("don-4"), 1);
}

TEST_F(HttpChargingTest, InvalidRequestsAreRejectedWithoutBeingSent) {
  StartSim();
  auto backend = MakeBackend();
  EXPECT_EQ(Charge(*backend, Request(std::string(31, 'k'))).outcome, ChargeOutcome::kRejected);
  EXPECT_EQ(Charge(*backend, Request("has space")).outcome, ChargeOutcome::kRejected);
  EXPECT_EQ(Charge(*backend, Request("don-5", 0)).outcome, ChargeOutcome::kRejected);
  EXPECT_EQ(Charge(*backend, Request("don-6", 100, "84-91")).outcome, ChargeOutcome::kRejected);
  EXPECT_EQ(backend->stats().requests, 0u);
  EXPECT_EQ(sim_->Debits()["debits"].size(), 0u);
}

TEST_F(HttpChargingTest, BearerTokenIsSentAndAWrongOneIsOurError) {
  StartSim({"--token", "s3cret"});
  HttpChargingOptions wrong;
  wrong.bearer_token = "nope";
  auto bad = MakeBackend(wrong);
  ChargeResult r = Charge(*bad, Request("don-7"));
  EXPECT_EQ(r.outcome, ChargeOutcome::kRejected);
  EXPECT_NE(r.detail.find("401"), std::string::npos) << r.detail;
  EXPECT_EQ(r.detail.find("nope"), std::string::npos) << "token leaked into the detail";
  // A Status answer that is not explicit never settles a key.
  EXPECT_EQ(Status(*bad, "don-7").outcome, ChargeOutcome::kUnknown);

  HttpChargingOptions right;
  right.bearer_token = "s3cret";
  auto good = MakeBackend(right);
  EXPECT_EQ(Charge(*good, Request("don-7")).outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(sim_->DebitsFor("don-7", "s3cret"), 1);
}

TEST_F(HttpChargingTest, ServerErrorsAreRetriedWithTheSameKeyThenUnknown) {
  StartSim();
  ASSERT_TRUE(sim_->SetConfig({{"fail_rate", 1.0}}));
  HttpChargingOptions options;
  options.retries = 2;
  auto backend = MakeBackend(options);
  ChargeResult r = Charge(*backend, Request("don-8"));
  EXPECT_EQ(r.outcome, ChargeOutcome::kUnknown) << r.detail;
  EXPECT_TRUE(r.backend_failure);
  EXPECT_NE(r.detail.find("503"), std::string::npos) << r.detail;
  EXPECT_EQ(backend->stats().requests, 3u);
  EXPECT_EQ(backend->stats().retries, 2u);

  ASSERT_TRUE(sim_->SetConfig({{"fail_rate", 0.0}}));
  // The 503s were not processed, so the key is unknown to the backend: safe to re-send it.
  EXPECT_EQ(Status(*backend, "don-8").outcome, ChargeOutcome::kNotFound);
  EXPECT_EQ(Charge(*backend, Request("don-8")).outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(sim_->DebitsFor("don-8"), 1);
}

TEST_F(HttpChargingTest, TimeoutAfterSendingIsUnknownAndStatusFindsTheSingleDebit) {
  StartSim();
  ASSERT_TRUE(sim_->SetConfig({{"timeout_rate", 1.0}, {"timeout_delay_ms", 3000}}));
  HttpChargingOptions options;
  options.timeout = 80ms;
  auto backend = MakeBackend(options);
  auto started = std::chrono::steady_clock::now();
  ChargeResult r = Charge(*backend, Request("don-9"));
  EXPECT_LT(std::chrono::steady_clock::now() - started, 1s);
  EXPECT_EQ(r.outcome, ChargeOutcome::kUnknown) << r.detail;
  EXPECT_TRUE(r.backend_failure);
  EXPECT_EQ(backend->stats().requests, 1u) << "a timeout after sending must not be retried blindly";
  EXPECT_EQ(backend->stats().timeouts, 1u);

  ChargeResult status = Status(*backend, "don-9");
  EXPECT_EQ(status.outcome, ChargeOutcome::kCharged) << status.detail;
  EXPECT_EQ(sim_->DebitsFor("don-9"), 1);
}

TEST_F(HttpChargingTest, LostResponseIsUnknownAndStatusFindsTheSingleDebit) {
  StartSim();
  ASSERT_TRUE(sim_->SetConfig({{"lost_response_rate", 1.0}}));
  auto backend = MakeBackend();
  ChargeResult r = Charge(*backend, Request("don-10"));
  EXPECT_EQ(r.outcome, ChargeOutcome::kUnknown) << r.detail;
  EXPECT_EQ(sim_->DebitsFor("don-10"), 1);
  ChargeResult status = Status(*backend, "don-10");
  EXPECT_EQ(status.outcome, ChargeOutcome::kCharged);
  // Re-sending the key (what a careless client would do) still debits once.
  ASSERT_TRUE(sim_->SetConfig({{"lost_response_rate", 0.0}}));
  EXPECT_EQ(Charge(*backend, Request("don-10")).outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(sim_->DebitsFor("don-10"), 1);
}

TEST_F(HttpChargingTest, ConnectionRefusedIsUnavailableNotUnknown) {
  HttpChargingOptions options;
  options.url = "http://127.0.0.1:" + std::to_string(FreeTcpPort());
  options.retries = 1;
  auto backend = MakeBackend(options);
  ChargeResult r = Charge(*backend, Request("don-11"));
  EXPECT_EQ(r.outcome, ChargeOutcome::kUnavailable) << r.detail;
  EXPECT_TRUE(r.backend_failure);
  EXPECT_EQ(backend->stats().requests, 2u);
}

TEST_F(HttpChargingTest, KeepAliveReusesOneConnectionForSequentialCalls) {
  StartSim();
  auto backend = MakeBackend();
  for (int i = 0; i < 20; ++i) {
    ASSERT_EQ(Charge(*backend, Request("ka-" + std::to_string(i), 1000)).outcome, ChargeOutcome::kCharged);
  }
  EXPECT_EQ(backend->stats().connections_opened, 1u);
}

TEST_F(HttpChargingTest, ServerRestartBetweenCallsIsRetriedOnAFreshConnection) {
  int port = FreeTcpPort();
  sim_ = std::make_unique<ChargingSimProcess>(SimBinary(), port, std::vector<std::string>{});
  auto backend = MakeBackend();
  ASSERT_EQ(Charge(*backend, Request("don-30")).outcome, ChargeOutcome::kCharged);
  // The pooled keep-alive connection dies with the process; the next call must not report
  // that as "unknown" but retry it (same key) on a new connection.
  sim_.reset();
  sim_ = std::make_unique<ChargingSimProcess>(SimBinary(), port, std::vector<std::string>{});
  ChargeResult r = Charge(*backend, Request("don-31"));
  EXPECT_EQ(r.outcome, ChargeOutcome::kCharged) << r.detail;
  EXPECT_EQ(backend->stats().connections_opened, 2u);
  EXPECT_EQ(sim_->DebitsFor("don-31"), 1);
}

TEST_F(HttpChargingTest, ConcurrencyIsBoundedAndExtraRequestsQueue) {
  StartSim({"--latency-ms", "40"});
  HttpChargingOptions options;
  options.max_concurrency = 2;
  auto backend = MakeBackend(options);
  constexpr int kCalls = 8;
  std::vector<std::promise<ChargeResult>> promises(kCalls);
  auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kCalls; ++i) {
    backend->Charge(Request("cc-" + std::to_string(i), 1000),
                    [&promises, i](ChargeResult r) { promises[i].set_value(std::move(r)); });
  }
  EXPECT_EQ(backend->stats().in_flight + backend->stats().queued <= kCalls, true);
  for (auto& p : promises) {
    auto f = p.get_future();
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(f.get().outcome, ChargeOutcome::kCharged);
  }
  auto elapsed = std::chrono::steady_clock::now() - started;
  // 8 calls, 2 at a time, 40 ms each: at least 4 rounds.
  EXPECT_GE(elapsed, 150ms);
  EXPECT_LE(backend->stats().connections_opened, 2u);
  EXPECT_EQ(sim_->Debits()["debits"].size(), static_cast<size_t>(kCalls));
}

TEST_F(HttpChargingTest, RefundOnceRestoresTheBalance) {
  StartSim({"--default-balance", "50000"});
  auto backend = MakeBackend();
  ASSERT_EQ(Charge(*backend, Request("don-12", 20000)).outcome, ChargeOutcome::kCharged);
  EXPECT_EQ(Refund(*backend, "don-12", 20000).outcome, RefundOutcome::kRefunded);
  EXPECT_EQ(Refund(*backend, "don-12", 20000).outcome, RefundOutcome::kRefunded) << "a retried refund is a replay";
  EXPECT_EQ(sim_->Balance("84912345678"), 50000);
  EXPECT_EQ(Refund(*backend, "don-12", 5000).outcome, RefundOutcome::kRejected);
  EXPECT_EQ(Refund(*backend, "don-missing", 1000).outcome, RefundOutcome::kNotFound);
  EXPECT_EQ(sim_->Debits()["refunds"].size(), 1u);
}

class HttpChargingTlsTest : public HttpChargingTest {
 protected:
  void SetUp() override {
    if (std::system("command -v openssl >/dev/null 2>&1") != 0) GTEST_SKIP() << "openssl CLI not installed";
    dir_ = MakeTempDir("charging-tls");
    std::string cmd = "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                      "-addext subjectAltName=IP:127.0.0.1 -keyout " + dir_ + "/key.pem -out " + dir_ +
                      "/cert.pem >/dev/null 2>&1";
    ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    StartSim({"--tls-cert", dir_ + "/cert.pem", "--tls-key", dir_ + "/key.pem"}, /*tls=*/true);
  }
  std::string dir_;
};

TEST_F(HttpChargingTlsTest, SelfSignedCertificateIsRefusedByDefault) {
  auto backend = MakeBackend();  // verification on, system trust store only
  ChargeResult r = Charge(*backend, Request("don-20"));
  EXPECT_EQ(r.outcome, ChargeOutcome::kUnavailable) << r.detail;
  EXPECT_TRUE(r.backend_failure);
  EXPECT_NE(r.detail.find("TLS handshake"), std::string::npos) << r.detail;
  EXPECT_NE(r.detail.find("certificate verify failed"), std::string::npos) << r.detail;
  EXPECT_EQ(sim_->Debits()["debits"].size(), 0u) << "nothing may be sent to an unverified peer";
}

TEST_F(HttpChargingTlsTest, TrustedCaFileWorksAndTheNameIsChecked) {
  HttpChargingOptions options;
  options.ca_file = dir_ + "/cert.pem";
  auto backend = MakeBackend(options);
  ChargeResult r = Charge(*backend, Request("don-21"));
  EXPECT_EQ(r.outcome, ChargeOutcome::kCharged) << r.detail;

  options.server_name = "charging.example.net";  // certificate is for 127.0.0.1 only
  auto wrong_name = MakeBackend(options);
  EXPECT_EQ(Charge(*wrong_name, Request("don-22")).outcome, ChargeOutcome::kUnavailable);
  EXPECT_EQ(sim_->DebitsFor("don-21"), 1);
  EXPECT_EQ(sim_->DebitsFor("don-22"), 0);
}

TEST_F(HttpChargingTlsTest, VerificationCanOnlyBeSwitchedOffExplicitly) {
  HttpChargingOptions options;
  options.tls_verify = false;
  auto backend = MakeBackend(options);
  EXPECT_EQ(Charge(*backend, Request("don-23")).outcome, ChargeOutcome::kCharged);
}

TEST(HttpChargingCreateTest, BadOptionsAreReportedNotThrown) {
  boost::asio::io_context io;
  std::string error;
  HttpChargingOptions options;
  options.url = "ftp://x";
  EXPECT_FALSE(HttpChargingBackend::Create(io.get_executor(), options, &error));
  EXPECT_NE(error.find("http://"), std::string::npos);
  options.url = "http://host:12ab";
  EXPECT_FALSE(HttpChargingBackend::Create(io.get_executor(), options, &error));
  options.url = "https://host";
  options.ca_file = "/nonexistent/ca.pem";
  EXPECT_FALSE(HttpChargingBackend::Create(io.get_executor(), options, &error));
  EXPECT_NE(error.find("ca_file"), std::string::npos);
}

}  // namespace
}  // namespace donagate::billing
