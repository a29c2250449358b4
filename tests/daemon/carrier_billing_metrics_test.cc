// CarrierBillingMetricsExporter: the backend's counters appear per operator, grow by what the
// backend counted since the last sync (never twice), and two operators share the families.
#include "daemon/carrier_billing_metrics.h"

#include <gtest/gtest.h>
#include <prometheus/text_serializer.h>

#include <boost/asio/io_context.hpp>
#include <mutex>

#include "tests/common/metrics_text.h"

namespace donagate::daemon {
namespace {

using Stats = billing::CarrierBillingChargingBackend::Stats;
using testing::MetricsText;

class CarrierBillingMetricsTest : public ::testing::Test {
 protected:
  MetricsText Scrape() {
    MetricsText parsed = MetricsText::Parse(prometheus::TextSerializer().Serialize(registry_.Collect()));
    EXPECT_TRUE(parsed.errors().empty());
    return parsed;
  }
  CarrierBillingMetricsExporter::Source SourceOf(Stats& stats) {
    return [this, &stats] {
      std::lock_guard<std::mutex> lock(mu_);
      return stats;
    };
  }
  double Value(const std::string& name, const std::string& op) {
    return Scrape().Value(name, {{"operator", op}}).value_or(-1);
  }

  boost::asio::io_context io_;
  prometheus::Registry registry_;
  std::mutex mu_;
};

TEST_F(CarrierBillingMetricsTest, CountersFollowTheBackendPerOperator) {
  Stats opa, opb;
  auto a = CarrierBillingMetricsExporter::Start(io_.get_executor(), registry_, "opa", SourceOf(opa));
  auto b = CarrierBillingMetricsExporter::Start(io_.get_executor(), registry_, "opb", SourceOf(opb));
  // Present (at 0) from the start, so an alert on the rate has a series to look at.
  EXPECT_EQ(Value("donagate_carrier_billing_token_failures_total", "opa"), 0);
  EXPECT_EQ(Value("donagate_carrier_billing_api_requests_total", "opb"), 0);

  opa = Stats{.requests = 120, .token_requests = 3, .token_refreshes_on_401 = 1, .timeouts = 2, .retrievals = 5,
              .token_failures = 1};
  opb.requests = 7;
  a->Sync();
  b->Sync();
  EXPECT_EQ(Value("donagate_carrier_billing_api_requests_total", "opa"), 120);
  EXPECT_EQ(Value("donagate_carrier_billing_token_requests_total", "opa"), 3);
  EXPECT_EQ(Value("donagate_carrier_billing_token_refreshes_on_401_total", "opa"), 1);
  EXPECT_EQ(Value("donagate_carrier_billing_timeouts_total", "opa"), 2);
  EXPECT_EQ(Value("donagate_carrier_billing_retrievals_total", "opa"), 5);
  EXPECT_EQ(Value("donagate_carrier_billing_token_failures_total", "opa"), 1);
  EXPECT_EQ(Value("donagate_carrier_billing_api_requests_total", "opb"), 7);

  // A sync without news adds nothing; news adds only the difference.
  a->Sync();
  EXPECT_EQ(Value("donagate_carrier_billing_api_requests_total", "opa"), 120);
  opa.requests = 150;
  opa.token_failures = 4;
  a->Sync();
  EXPECT_EQ(Value("donagate_carrier_billing_api_requests_total", "opa"), 150);
  EXPECT_EQ(Value("donagate_carrier_billing_token_failures_total", "opa"), 4);
  EXPECT_EQ(Value("donagate_carrier_billing_api_requests_total", "opb"), 7);
}

TEST_F(CarrierBillingMetricsTest, TheTimerSyncsWithoutBeingAsked) {
  Stats opa;
  auto a = CarrierBillingMetricsExporter::Start(io_.get_executor(), registry_, "opa", SourceOf(opa),
                                                std::chrono::milliseconds(10));
  {
    std::lock_guard<std::mutex> lock(mu_);
    opa.retrievals = 9;
  }
  io_.run_for(std::chrono::milliseconds(100));
  EXPECT_EQ(Value("donagate_carrier_billing_retrievals_total", "opa"), 9);
  a.reset();  // the pending wait does not keep it alive, and nothing runs after
  io_.run_for(std::chrono::milliseconds(30));
}

}  // namespace
}  // namespace donagate::daemon
