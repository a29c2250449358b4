#include "daemon/metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "tests/common/metrics_text.h"

namespace donagate::daemon {
namespace {

using testing::MetricsText;

class MetricsTest : public ::testing::Test {
 protected:
  MetricsText Scrape() {
    const std::string text = prometheus::TextSerializer().Serialize(registry_.Collect());
    MetricsText parsed = MetricsText::Parse(text);
    EXPECT_TRUE(parsed.errors().empty()) << parsed.errors().front();
    return parsed;
  }

  prometheus::Registry registry_;
  Metrics metrics_{registry_, "1.2.3-test"};
};

TEST_F(MetricsTest, MessageCountersAppearPerLinkAndReason) {
  auto& opa = metrics_.ForLink("opa");
  opa.mo_received.Increment();
  opa.mo_received.Increment();
  opa.mo_accepted.Increment();
  metrics_.ForLink("opb").mo_received.Increment();
  EXPECT_EQ(&metrics_.ForLink("opa"), &opa) << "handles are cached, not re-created";
  metrics_.MoRejected(billing::MessageOutcome::kSyntaxError);
  metrics_.MoRejected(billing::MessageOutcome::kSyntaxError);
  metrics_.MoRejected(billing::MessageOutcome::kInvalidMsisdn);
  metrics_.MoTempError(TempErrorReason::kStoreUnavailable);
  metrics_.concat_parts_pending().Set(4);

  const MetricsText m = Scrape();
  EXPECT_EQ(m.Value("donagate_mo_received_total", {{"link", "opa"}}), 2);
  EXPECT_EQ(m.Value("donagate_mo_received_total", {{"link", "opb"}}), 1);
  EXPECT_EQ(m.Value("donagate_mo_accepted_total", {{"link", "opa"}}), 1);
  EXPECT_EQ(m.Value("donagate_mo_rejected_total", {{"reason", "syntax_error"}}), 2);
  EXPECT_EQ(m.Value("donagate_mo_rejected_total", {{"reason", "invalid_msisdn"}}), 1);
  EXPECT_EQ(m.Value("donagate_mo_rejected_total", {{"reason", "unknown_campaign"}}), 0)
      << "closed label sets are pre-created at zero so rate() works from the first scrape";
  EXPECT_EQ(m.Value("donagate_mo_temp_errors_total", {{"reason", "store_unavailable"}}), 1);
  EXPECT_EQ(m.Value("donagate_concat_parts_pending"), 4);
  EXPECT_EQ(m.types().at("donagate_mo_received_total"), "counter");
  EXPECT_EQ(m.types().at("donagate_concat_parts_pending"), "gauge");
}

TEST_F(MetricsTest, DonationsUnitsAndVndPerCampaignAndOperator) {
  auto& flood_vt = metrics_.ForCampaign("flood", "viettel");
  flood_vt.Entered(billing::DonationState::kCharged);
  flood_vt.Charged(3, 30000);
  flood_vt.Entered(billing::DonationState::kPartiallyCharged);
  flood_vt.Charged(1, 10000);
  metrics_.ForCampaign("flood", "mobifone").Entered(billing::DonationState::kFailed);
  metrics_.ForCampaign("school", "viettel").Charged(5, 50000);
  metrics_.charges_unknown_outstanding().Set(2);

  const MetricsText m = Scrape();
  EXPECT_EQ(m.Value("donagate_donations_total",
                    {{"campaign", "flood"}, {"operator", "viettel"}, {"state", "charged"}}), 1);
  EXPECT_EQ(m.Value("donagate_donations_total",
                    {{"campaign", "flood"}, {"operator", "viettel"}, {"state", "partially_charged"}}), 1);
  EXPECT_EQ(m.Value("donagate_donations_total",
                    {{"campaign", "flood"}, {"operator", "mobifone"}, {"state", "failed"}}), 1);
  EXPECT_EQ(m.Value("donagate_donations_units_charged_total", {{"campaign", "flood"}, {"operator", "viettel"}}), 4);
  EXPECT_EQ(m.Value("donagate_donations_vnd_charged_total", {{"campaign", "flood"}, {"operator", "viettel"}}), 40000);
  EXPECT_EQ(m.Sum("donagate_donations_vnd_charged_total", {{"operator", "viettel"}}), 90000);
  EXPECT_EQ(m.Value("donagate_charges_unknown_outstanding"), 2);
  // Campaign and operator names that share a prefix must not collide in the cache.
  EXPECT_NE(&metrics_.ForCampaign("ab", "c"), &metrics_.ForCampaign("a", "bc"));
}

TEST_F(MetricsTest, LargeVndSumsStayExact) {
  // A busy campaign charges billions of VND; doubles are exact up to 2^53.
  auto& c = metrics_.ForCampaign("flood", "viettel");
  for (int i = 0; i < 1000; ++i) c.Charged(1, 1'000'000);
  c.Charged(1, 7);
  EXPECT_EQ(Scrape().Value("donagate_donations_vnd_charged_total", {{"campaign", "flood"}, {"operator", "viettel"}}),
            1'000'000'007.0);
}

TEST_F(MetricsTest, ChargingRequestsLatencyAndBreaker) {
  auto& backend = metrics_.ForBackend("viettel");
  backend.Request(billing::ChargeOutcome::kCharged, 0.004);
  backend.Request(billing::ChargeOutcome::kCharged, 0.030);
  backend.Request(billing::ChargeOutcome::kUnknown, 5.0);
  backend.SetBreaker(billing::CircuitBreaker::State::kOpen);
  metrics_.ForBackend("mobifone").SetBreaker(billing::CircuitBreaker::State::kHalfOpen);
  metrics_.charging_paused().Set(1);

  const MetricsText m = Scrape();
  EXPECT_EQ(m.Value("donagate_charging_requests_total", {{"backend", "viettel"}, {"outcome", "charged"}}), 2);
  EXPECT_EQ(m.Value("donagate_charging_requests_total", {{"backend", "viettel"}, {"outcome", "unknown"}}), 1);
  EXPECT_EQ(m.Value("donagate_charging_requests_total", {{"backend", "viettel"}, {"outcome", "not_found"}}), 0);
  EXPECT_EQ(m.Value("donagate_charging_request_duration_seconds_count", {{"backend", "viettel"}}), 3);
  EXPECT_NEAR(*m.Value("donagate_charging_request_duration_seconds_sum", {{"backend", "viettel"}}), 5.034, 1e-9);
  EXPECT_EQ(m.Value("donagate_charging_request_duration_seconds_bucket", {{"backend", "viettel"}, {"le", "0.005"}}), 1);
  EXPECT_EQ(m.Value("donagate_charging_request_duration_seconds_bucket", {{"backend", "viettel"}, {"le", "0.05"}}), 2);
  EXPECT_EQ(m.Value("donagate_charging_breaker_state", {{"backend", "viettel"}}), 2) << "open";
  EXPECT_EQ(m.Value("donagate_charging_breaker_state", {{"backend", "mobifone"}}), 1) << "half-open";
  EXPECT_EQ(m.Value("donagate_charging_paused"), 1);
  EXPECT_EQ(m.types().at("donagate_charging_request_duration_seconds"), "histogram");
}

TEST_F(MetricsTest, StoreRepliesReceiptsLatencyAdmin) {
  metrics_.store_batch_size().Observe(64);
  metrics_.store_commit_duration().Observe(0.0015);
  metrics_.StoreError(billing::StoreStatus::Transient("connection lost"));
  metrics_.StoreError(billing::StoreStatus::Permanent("relation missing"));
  metrics_.StoreError(billing::StoreStatus::Ok());
  metrics_.store_pool_in_use().Set(3);
  metrics_.ForOperator("viettel").Add(ReplyResult::kSent);
  metrics_.ForOperator("viettel").Add(ReplyResult::kThrottled);
  metrics_.Receipt("DELIVRD");
  metrics_.Receipt("DELIVRD");
  metrics_.Receipt("weird");
  metrics_.outbox_backlog().Set(17);
  metrics_.ack_latency().Observe(0.0008);
  metrics_.ack_latency().Observe(0.003);
  metrics_.reply_latency().Observe(0.2);
  metrics_.Admin(AdminAction::kPauseCharging);

  const MetricsText m = Scrape();
  EXPECT_EQ(m.Value("donagate_store_batch_size_bucket", {{"le", "32"}}), 0);
  EXPECT_EQ(m.Value("donagate_store_batch_size_bucket", {{"le", "64"}}), 1);
  EXPECT_EQ(m.Value("donagate_store_commit_duration_seconds_bucket", {{"le", "0.002"}}), 1);
  EXPECT_EQ(m.Value("donagate_store_errors_total", {{"kind", "transient"}}), 1);
  EXPECT_EQ(m.Value("donagate_store_errors_total", {{"kind", "permanent"}}), 1);
  EXPECT_EQ(m.Value("donagate_store_pool_in_use"), 3);
  EXPECT_EQ(m.Value("donagate_replies_total", {{"operator", "viettel"}, {"result", "sent"}}), 1);
  EXPECT_EQ(m.Value("donagate_replies_total", {{"operator", "viettel"}, {"result", "throttled"}}), 1);
  EXPECT_EQ(m.Value("donagate_replies_total", {{"operator", "viettel"}, {"result", "failed"}}), 0);
  EXPECT_EQ(m.Value("donagate_receipts_total", {{"stat", "DELIVRD"}}), 2);
  EXPECT_EQ(m.Value("donagate_receipts_total", {{"stat", "other"}}), 1)
      << "unknown stats fold into 'other' so a peer cannot grow the label set";
  EXPECT_EQ(m.Value("donagate_outbox_backlog"), 17);
  EXPECT_EQ(m.Value("donagate_ack_latency_seconds_bucket", {{"le", "0.001"}}), 1);
  EXPECT_EQ(m.Value("donagate_ack_latency_seconds_bucket", {{"le", "0.005"}}), 2);
  EXPECT_EQ(m.Value("donagate_ack_latency_seconds_count"), 2);
  EXPECT_EQ(m.Value("donagate_reply_latency_seconds_count"), 1);
  EXPECT_EQ(m.Value("donagate_admin_actions_total", {{"action", "pause_charging"}}), 1);
}

TEST_F(MetricsTest, BuildInfoAndStartTime) {
  const MetricsText m = Scrape();
  EXPECT_EQ(m.Value("donagate_build_info", {{"version", "1.2.3-test"}}), 1);
  const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  const double start = *m.Value("donagate_process_start_time_seconds");
  EXPECT_GT(start, now - 60);
  EXPECT_LE(start, now + 1);
}

TEST_F(MetricsTest, NamesListsExactlyTheRegisteredFamilies) {
  std::set<std::string> registered;
  for (const auto& family : registry_.Collect()) registered.insert(family.name);
  const std::set<std::string> listed(Metrics::Names().begin(), Metrics::Names().end());
  // Families with configured-name labels appear only once used.
  metrics_.ForLink("x");
  metrics_.ForCampaign("c", "o");
  metrics_.ForBackend("b");
  metrics_.ForOperator("o");
  metrics_.DbConnected(billing::DbServer{"db1", "5432", false}, false);
  registered.clear();
  for (const auto& family : registry_.Collect()) registered.insert(family.name);
  EXPECT_EQ(registered, listed);
}

TEST_F(MetricsTest, ConcurrentHandleLookupsAndIncrementsAreExact) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([this] {
      for (int i = 0; i < 10000; ++i) {
        metrics_.ForLink("opa").mo_received.Increment();
        metrics_.ForCampaign("flood", "viettel").Charged(1, 10000);
      }
    });
  }
  for (auto& t : threads) t.join();
  const MetricsText m = Scrape();
  EXPECT_EQ(m.Value("donagate_mo_received_total", {{"link", "opa"}}), 40000);
  EXPECT_EQ(m.Value("donagate_donations_vnd_charged_total", {{"campaign", "flood"}, {"operator", "viettel"}}),
            400000000.0);
}

TEST(MetricsTextParser, ReadsEscapedLabelsAndReportsGarbage) {
  const auto m = testing::MetricsText::Parse(
      "# TYPE a_total counter\n"
      "a_total{x=\"q\\\"uo\\\\te\",y=\"\"} 3\n"
      "b 1.5e3 1700000000000\n"
      "not a sample\n");
  EXPECT_EQ(m.Value("a_total", {{"x", "q\"uo\\te"}, {"y", ""}}), 3);
  EXPECT_EQ(m.Value("b"), 1500);
  ASSERT_EQ(m.errors().size(), 1u);
}

}  // namespace
}  // namespace donagate::daemon
