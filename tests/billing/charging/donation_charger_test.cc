// DonationCharger against the real charging simulator through the HTTP backend: whole and
// per_unit math, unknown outcomes resolved by Status (exactly one debit per key), restart
// resume from stored rows, and a backend outage (breaker opens → deferred → recovers).
#include "billing/charging/donation_charger.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <future>
#include <thread>

#include "billing/charging/http_charging.h"
#include "tests/common/test_env.h"
#include "tools/charging_sim/sim_process.h"

namespace donagate::billing {
namespace {

using donagate::testing::BinaryPath;
using donagate::testing::ChargingSimProcess;
using donagate::testing::FreeTcpPort;
using namespace std::chrono_literals;

constexpr char kMsisdn[] = "84987654321";

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

DonationChargeInput Donation(int64_t id, int32_t units, ChargingMode mode, int64_t unit_price = 20000) {
  DonationChargeInput in;
  in.donation_id = id;
  in.campaign = "flood-relief";
  in.operator_name = "viettel";
  in.msisdn = kMsisdn;
  in.units = units;
  in.unit_price_vnd = unit_price;
  in.amount_vnd = units * unit_price;
  in.mode = mode;
  return in;
}

class DonationChargerTest : public ::testing::Test {
 protected:
  void Start(std::vector<std::string> sim_args, CircuitBreaker* breaker = nullptr, int retries = 1) {
    sim_ = std::make_unique<ChargingSimProcess>(BinaryPath("tools/charging_sim/charging_sim"), FreeTcpPort(),
                                                std::move(sim_args));
    HttpChargingOptions options;
    options.operator_name = "viettel";
    options.url = sim_->url();
    options.timeout = 200ms;  // well under the simulator's timeout delays, well over a loaded CI's latency
    options.retries = retries;
    options.retry_backoff = 2ms;
    std::string error;
    backend_ = HttpChargingBackend::Create(io_.executor(), options, &error);
    ASSERT_TRUE(backend_) << error;
    DonationChargerOptions charger_options;
    charger_options.status_backoff_min = 10ms;
    charger_options.status_backoff_max = 80ms;
    charger_options.status_max_wait = 2s;
    charger_ = std::make_unique<DonationCharger>(io_.executor(), *backend_, breaker, charger_options);
  }

  DonationChargeOutcome Run(DonationChargeInput input) {
    std::promise<DonationChargeOutcome> p;
    charger_->ChargeDonation(std::move(input), [&p](DonationChargeOutcome o) { p.set_value(std::move(o)); });
    auto f = p.get_future();
    EXPECT_EQ(f.wait_for(15s), std::future_status::ready);
    return f.get();
  }

  ChargeResult DirectCharge(const std::string& key, int64_t amount) {
    ChargeRequest r;
    r.idempotency_key = key;
    r.msisdn = kMsisdn;
    r.operator_name = "viettel";
    r.amount_vnd = amount;
    r.units = 1;
    r.campaign = "flood-relief";
    std::promise<ChargeResult> p;
    backend_->Charge(r, [&p](ChargeResult x) { p.set_value(std::move(x)); });
    return p.get_future().get();
  }

  // Every key in the simulator's debit log appears exactly once.
  void ExpectOneDebitPerKey() {
    std::map<std::string, int> seen;
    const nlohmann::json log = sim_->Debits();
    ASSERT_TRUE(log.contains("debits"));
    for (const auto& d : log["debits"]) ++seen[d["key"].get<std::string>()];
    for (const auto& [key, n] : seen) EXPECT_EQ(n, 1) << key << " debited " << n << " times";
  }

  IoThread io_;
  std::unique_ptr<ChargingSimProcess> sim_;
  std::unique_ptr<HttpChargingBackend> backend_;
  std::unique_ptr<DonationCharger> charger_;
};

TEST_F(DonationChargerTest, WholeModeIsOneChargeOfUnitsTimesPrice) {
  Start({"--default-balance", "1000000"});
  DonationChargeOutcome o = Run(Donation(1, 5, ChargingMode::kWhole));
  ASSERT_EQ(o.state, DonationChargeState::kCharged) << o.detail;
  EXPECT_EQ(o.charged_units, 5);
  EXPECT_EQ(o.charged_amount_vnd, 100000);
  ASSERT_EQ(o.charges.size(), 1u);
  EXPECT_EQ(o.charges[0].key, "don-1");
  EXPECT_EQ(o.charges[0].unit_index, 0);
  EXPECT_EQ(o.charges[0].units, 5);
  EXPECT_EQ(o.charges[0].amount_vnd, 100000);
  EXPECT_EQ(o.charges[0].outcome, ChargeOutcome::kCharged);
  EXPECT_FALSE(o.charges[0].operator_reference.empty());
  EXPECT_TRUE(o.charges[0].changed);
  EXPECT_EQ(sim_->Balance(kMsisdn), 900000);
  EXPECT_EQ(sim_->DebitsFor("don-1"), 1);
}

TEST_F(DonationChargerTest, PerUnitWithSixtyThousandChargesThreeOfFiveUnits) {
  Start({"--default-balance", "60000"});
  DonationChargeOutcome o = Run(Donation(2, 5, ChargingMode::kPerUnit));
  EXPECT_EQ(o.state, DonationChargeState::kPartiallyCharged) << o.detail;
  EXPECT_EQ(o.failure_reason, ChargeFailureReason::kInsufficientFunds);
  EXPECT_EQ(o.charged_units, 3);
  EXPECT_EQ(o.charged_amount_vnd, 60000);
  ASSERT_EQ(o.charges.size(), 4u) << "units 1-3 charged, unit 4 refused, unit 5 never tried";
  for (int u = 0; u < 3; ++u) {
    EXPECT_EQ(o.charges[u].key, "don-2-" + std::to_string(u + 1));
    EXPECT_EQ(o.charges[u].unit_index, u + 1);
    EXPECT_EQ(o.charges[u].amount_vnd, 20000);
    EXPECT_EQ(o.charges[u].outcome, ChargeOutcome::kCharged);
  }
  EXPECT_EQ(o.charges[3].outcome, ChargeOutcome::kInsufficientFunds);
  EXPECT_EQ(sim_->Balance(kMsisdn), 0);
  EXPECT_EQ(sim_->Debits()["debits"].size(), 3u);
  EXPECT_EQ(sim_->DebitsFor("don-2-5"), 0);
}

TEST_F(DonationChargerTest, NoBalanceFailsWithInsufficientFunds) {
  Start({"--default-balance", "0"});
  DonationChargeOutcome per_unit = Run(Donation(3, 5, ChargingMode::kPerUnit));
  EXPECT_EQ(per_unit.state, DonationChargeState::kFailed);
  EXPECT_EQ(per_unit.failure_reason, ChargeFailureReason::kInsufficientFunds);
  EXPECT_EQ(per_unit.charged_units, 0);
  EXPECT_EQ(per_unit.charged_amount_vnd, 0);
  ASSERT_EQ(per_unit.charges.size(), 1u);
  DonationChargeOutcome whole = Run(Donation(4, 2, ChargingMode::kWhole));
  EXPECT_EQ(whole.state, DonationChargeState::kFailed);
  EXPECT_EQ(whole.failure_reason, ChargeFailureReason::kInsufficientFunds);
  EXPECT_EQ(sim_->Debits()["debits"].size(), 0u);
}

TEST_F(DonationChargerTest, TimeoutsAreResolvedByStatusWithOneDebitPerKey) {
  Start({"--timeout-rate", "1", "--timeout-delay-ms", "3000"});
  DonationChargeOutcome o = Run(Donation(5, 3, ChargingMode::kPerUnit));
  ASSERT_EQ(o.state, DonationChargeState::kCharged) << o.detail;
  EXPECT_EQ(o.charged_units, 3);
  EXPECT_GE(backend_->stats().timeouts, 3u) << "every unit's charge timed out and was resolved";
  for (int u = 1; u <= 3; ++u) EXPECT_EQ(sim_->DebitsFor("don-5-" + std::to_string(u)), 1);
  EXPECT_EQ(sim_->Debits()["debits"].size(), 3u);
}

TEST_F(DonationChargerTest, LostResponsesAreResolvedByStatusWithOneDebitPerKey) {
  Start({"--lost-response-rate", "1"});
  DonationChargeOutcome whole = Run(Donation(6, 4, ChargingMode::kWhole));
  ASSERT_EQ(whole.state, DonationChargeState::kCharged) << whole.detail;
  EXPECT_EQ(whole.charged_amount_vnd, 80000);
  DonationChargeOutcome per_unit = Run(Donation(7, 2, ChargingMode::kPerUnit));
  ASSERT_EQ(per_unit.state, DonationChargeState::kCharged) << per_unit.detail;
  EXPECT_EQ(sim_->Debits()["debits"].size(), 3u);
  ExpectOneDebitPerKey();
}

TEST_F(DonationChargerTest, StatusNotFoundResendsTheSameKey) {
  Start({"--fail-rate", "1"});
  std::thread heal([this] {
    std::this_thread::sleep_for(150ms);
    sim_->SetConfig({{"fail_rate", 0.0}});
  });
  DonationChargeOutcome o = Run(Donation(8, 1, ChargingMode::kWhole));
  heal.join();
  ASSERT_EQ(o.state, DonationChargeState::kCharged) << o.detail;
  EXPECT_EQ(sim_->DebitsFor("don-8"), 1);
  EXPECT_EQ(sim_->Debits()["debits"].size(), 1u) << "a new key was used";
}

TEST_F(DonationChargerTest, UnresolvedUnknownIsReportedAndResolvedOnTheNextRun) {
  Start({"--timeout-rate", "1", "--timeout-delay-ms", "5000", "--fail-rate", "0"});
  // Status keeps failing while the outage lasts: the charge stays unknown, never failed.
  std::thread outage([this] {
    std::this_thread::sleep_for(40ms);
    sim_->SetConfig({{"fail_rate", 1.0}});
  });
  DonationChargerOptions short_wait;
  short_wait.status_backoff_min = 20ms;
  short_wait.status_backoff_max = 40ms;
  short_wait.status_max_wait = 300ms;
  DonationCharger impatient(io_.executor(), *backend_, nullptr, short_wait);
  std::promise<DonationChargeOutcome> p;
  impatient.ChargeDonation(Donation(9, 1, ChargingMode::kWhole), [&p](DonationChargeOutcome o) { p.set_value(o); });
  DonationChargeOutcome first = p.get_future().get();
  outage.join();
  ASSERT_EQ(first.state, DonationChargeState::kUnknown) << first.detail;
  ASSERT_EQ(first.charges.size(), 1u);
  EXPECT_EQ(first.charges[0].outcome, ChargeOutcome::kUnknown);
  EXPECT_TRUE(first.charges[0].changed);

  // Later run with the stored row: resolved via Status as charged, no second debit.
  ASSERT_TRUE(sim_->SetConfig({{"fail_rate", 0.0}, {"timeout_rate", 0.0}}));
  DonationChargeInput again = Donation(9, 1, ChargingMode::kWhole);
  again.known_charges = first.charges;
  DonationChargeOutcome second = Run(again);
  ASSERT_EQ(second.state, DonationChargeState::kCharged) << second.detail;
  EXPECT_TRUE(second.charges[0].changed);
  EXPECT_EQ(sim_->DebitsFor("don-9"), 1);
}

TEST_F(DonationChargerTest, RestartResumeSkipsChargedUnitsAndResolvesUnknownOnes) {
  Start({});
  // Before the "crash": unit 2 reached the backend but its answer was never stored.
  ASSERT_EQ(DirectCharge("don-10-2", 20000).outcome, ChargeOutcome::kCharged);
  DonationChargeInput in = Donation(10, 4, ChargingMode::kPerUnit);
  ChargeRecord unit1{"don-10-1", 1, 1, 20000, ChargeOutcome::kCharged, "ref-from-store", "", false};
  ChargeRecord unit2{"don-10-2", 2, 1, 20000, ChargeOutcome::kUnknown, "", "timeout", false};
  ChargeRecord unit3{"don-10-3", 3, 1, 20000, ChargeOutcome::kUnknown, "", "timeout", false};  // never arrived
  in.known_charges = {unit1, unit2, unit3};
  DonationChargeOutcome o = Run(in);
  ASSERT_EQ(o.state, DonationChargeState::kCharged) << o.detail;
  EXPECT_EQ(o.charged_units, 4);
  EXPECT_EQ(o.charged_amount_vnd, 80000);
  ASSERT_EQ(o.charges.size(), 4u);
  EXPECT_FALSE(o.charges[0].changed);
  EXPECT_EQ(o.charges[0].operator_reference, "ref-from-store");
  EXPECT_TRUE(o.charges[1].changed);
  EXPECT_TRUE(o.charges[2].changed);
  EXPECT_TRUE(o.charges[3].changed);
  EXPECT_EQ(sim_->DebitsFor("don-10-1"), 0) << "a unit stored as charged was charged again";
  EXPECT_EQ(sim_->DebitsFor("don-10-2"), 1);
  EXPECT_EQ(sim_->DebitsFor("don-10-3"), 1);
  EXPECT_EQ(sim_->DebitsFor("don-10-4"), 1);
}

TEST_F(DonationChargerTest, StoredRowsDecideAndNothingIsSentTwice) {
  Start({});
  // Stored: units 1-2 charged, unit 3 refused → the earlier result stands, no calls.
  DonationChargeInput in = Donation(11, 5, ChargingMode::kPerUnit);
  in.known_charges = {{"don-11-1", 1, 1, 20000, ChargeOutcome::kCharged, "r1", "", false},
                      {"don-11-2", 2, 1, 20000, ChargeOutcome::kCharged, "r2", "", false},
                      {"don-11-3", 3, 1, 20000, ChargeOutcome::kInsufficientFunds, "", "", false}};
  DonationChargeOutcome o = Run(in);
  EXPECT_EQ(o.state, DonationChargeState::kPartiallyCharged);
  EXPECT_EQ(o.charged_units, 2);
  EXPECT_EQ(o.charged_amount_vnd, 40000);
  for (const auto& r : o.charges) EXPECT_FALSE(r.changed);
  // A donation charged whole stays whole even if the mode is now per_unit.
  DonationChargeInput whole = Donation(12, 3, ChargingMode::kPerUnit);
  whole.known_charges = {{"don-12", 0, 3, 60000, ChargeOutcome::kCharged, "r", "", false}};
  DonationChargeOutcome w = Run(whole);
  EXPECT_EQ(w.state, DonationChargeState::kCharged);
  EXPECT_EQ(w.charged_amount_vnd, 60000);
  EXPECT_EQ(backend_->stats().requests, 0u);
}

TEST_F(DonationChargerTest, BadInputFailsWithoutCallingTheBackend) {
  Start({});
  DonationChargeInput mismatch = Donation(13, 5, ChargingMode::kWhole);
  mismatch.amount_vnd = 99999;
  DonationChargeOutcome o = Run(mismatch);
  EXPECT_EQ(o.state, DonationChargeState::kFailed);
  EXPECT_EQ(o.failure_reason, ChargeFailureReason::kInvalidRequest);
  DonationChargeInput overflow = Donation(14, 2, ChargingMode::kWhole);
  overflow.unit_price_vnd = int64_t{1} << 62;  // 2 × 2^62 does not fit in int64
  overflow.amount_vnd = std::numeric_limits<int64_t>::min();
  EXPECT_EQ(Run(overflow).failure_reason, ChargeFailureReason::kInvalidRequest);
  DonationChargeInput long_key = Donation(9223372036854775807LL, 1000000, ChargingMode::kPerUnit, 1);
  EXPECT_EQ(Run(long_key).failure_reason, ChargeFailureReason::kInvalidRequest);
  EXPECT_EQ(backend_->stats().requests, 0u);
}

TEST_F(DonationChargerTest, OutageOpensTheBreakerDefersDonationsAndTheyCompleteAfterwards) {
  auto clock_start = std::chrono::steady_clock::now();
  std::atomic<int64_t> offset_ms{0};
  CircuitBreaker breaker(CircuitBreakerOptions{2, 300ms},
                         [&] { return clock_start + std::chrono::milliseconds(offset_ms.load()); });
  Start({"--fail-rate", "1"}, &breaker, /*retries=*/0);

  // Charge → 503 (maybe charged) → Status → 503: two failures open the breaker; the key stays
  // unknown, to be resolved later.
  DonationChargeOutcome a = Run(Donation(20, 1, ChargingMode::kWhole));
  EXPECT_EQ(a.state, DonationChargeState::kUnknown) << a.detail;
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kOpen);
  // While open, donations are deferred (pending), never failed, and the backend is not called.
  uint64_t requests_before = backend_->stats().requests;
  DonationChargeOutcome b = Run(Donation(21, 2, ChargingMode::kPerUnit));
  DonationChargeOutcome c = Run(Donation(22, 1, ChargingMode::kWhole));
  EXPECT_EQ(b.state, DonationChargeState::kDeferred) << b.detail;
  EXPECT_EQ(c.state, DonationChargeState::kDeferred);
  EXPECT_TRUE(b.charges.empty());
  EXPECT_EQ(backend_->stats().requests, requests_before);
  EXPECT_GE(breaker.counts().refused, 2u);

  // The backend comes back; after the cool-off one probe closes the breaker.
  ASSERT_TRUE(sim_->SetConfig({{"fail_rate", 0.0}}));
  offset_ms += 300;
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kHalfOpen);
  DonationChargeOutcome b2 = Run(Donation(21, 2, ChargingMode::kPerUnit));
  EXPECT_EQ(b2.state, DonationChargeState::kCharged) << b2.detail;
  EXPECT_EQ(breaker.state(), CircuitBreaker::State::kClosed);
  DonationChargeOutcome c2 = Run(Donation(22, 1, ChargingMode::kWhole));
  EXPECT_EQ(c2.state, DonationChargeState::kCharged);
  DonationChargeInput resume_a = Donation(20, 1, ChargingMode::kWhole);
  resume_a.known_charges = a.charges;
  DonationChargeOutcome a2 = Run(resume_a);
  EXPECT_EQ(a2.state, DonationChargeState::kCharged) << a2.detail;

  EXPECT_EQ(sim_->Debits()["debits"].size(), 4u);  // don-20, don-21-1, don-21-2, don-22
  ExpectOneDebitPerKey();
}

}  // namespace
}  // namespace donagate::billing
