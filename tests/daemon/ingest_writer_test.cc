// IngestWriter's group commit against real PostgreSQL: a batch lingers for company only while
// company keeps coming (idle_gap), never longer than `linger`, and items that shared a batch
// share one COMMIT (one IngestBatch call: the same commit_time).
#include "daemon/ingest_writer.h"

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "billing/store/migrate.h"
#include "tests/common/test_pg.h"

namespace donagate::daemon {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
using ::donagate::testing::CreateFreshDatabase;
using ::donagate::testing::QueryValue;

billing::IngestItem HelpItem(int i) {
  billing::InboundMessage m;
  m.link = "opa-1";
  m.operator_name = "opa";
  m.source_addr = "8491200" + std::to_string(10000 + i);
  m.msisdn = m.source_addr;
  m.dest_addr = "1407";
  m.raw_payload = m.text = "hello";
  m.received_at = billing::StoreClock::now();
  m.outcome = billing::MessageOutcome::kSyntaxError;
  billing::IngestItem item;
  item.message = m;
  return item;
}

class IngestWriterTest : public ::testing::Test {
 protected:
  void Start(milliseconds linger, std::chrono::microseconds idle_gap) {
    db_ = CreateFreshDatabase("ingest_writer");
    ASSERT_TRUE(billing::Migrate(db_).ok());
    IngestWriterOptions o;
    o.conninfo = db_;
    o.store_options.instance_id = "writer-test";
    o.threads = 1;
    o.linger = linger;
    o.idle_gap = idle_gap;
    writer_ = std::make_unique<IngestWriter>(io_.get_executor(), o);
    writer_->Start();
    // A first commit opens the connection, so the measured batches do not include connecting.
    Submit(0).get();
  }
  void TearDown() override {
    if (writer_) writer_->Stop();
    work_.reset();
    io_thread_.join();
  }
  std::future<IngestOutcome> Submit(int i) {
    auto p = std::make_shared<std::promise<IngestOutcome>>();
    auto f = p->get_future();
    writer_->Submit(HelpItem(i), 0, [p](const IngestOutcome& o) { p->set_value(o); });
    return f;
  }

  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_{io_.get_executor()};
  std::thread io_thread_{[this] { io_.run(); }};
  std::string db_;
  std::unique_ptr<IngestWriter> writer_;
};

TEST_F(IngestWriterTest, ABurstIsCommittedOnceNothingMoreArrivesNotAfterTheWholeLinger) {
  DONAGATE_REQUIRE_POSTGRES();
  Start(milliseconds(5000), milliseconds(50));
  const auto t0 = Clock::now();
  std::vector<std::future<IngestOutcome>> burst;
  for (int i = 1; i <= 3; ++i) burst.push_back(Submit(i));
  std::vector<IngestOutcome> out;
  for (auto& f : burst) out.push_back(f.get());
  // Answered after the idle gap, far from the 5 s linger an ack used to wait at low rates.
  EXPECT_LT(Clock::now() - t0, milliseconds(2500));
  for (const auto& o : out) {
    ASSERT_TRUE(o.ok()) << o.status.ToString();
    EXPECT_EQ(o.commit_time, out[0].commit_time) << "the burst was split over several commits";
  }
  EXPECT_EQ(QueryValue(db_, "SELECT count(*) FROM inbound_message"), "4");
}

TEST_F(IngestWriterTest, ItemsArrivingCloserThanTheIdleGapKeepTheBatchOpen) {
  DONAGATE_REQUIRE_POSTGRES();
  Start(milliseconds(5000), milliseconds(400));
  std::vector<std::future<IngestOutcome>> trickle;
  for (int i = 1; i <= 5; ++i) {
    trickle.push_back(Submit(i));
    std::this_thread::sleep_for(milliseconds(40));  // 10 times inside the gap
  }
  std::vector<IngestOutcome> out;
  for (auto& f : trickle) out.push_back(f.get());
  for (const auto& o : out) {
    ASSERT_TRUE(o.ok()) << o.status.ToString();
    EXPECT_EQ(o.commit_time, out[0].commit_time) << "a batch closed while items kept arriving";
  }
}

TEST_F(IngestWriterTest, WithoutAnIdleGapTheBatchLingersItsFullTime) {
  DONAGATE_REQUIRE_POSTGRES();
  Start(milliseconds(600), std::chrono::microseconds(0));
  const auto t0 = Clock::now();
  auto f = Submit(1);
  ASSERT_TRUE(f.get().ok());
  EXPECT_GE(Clock::now() - t0, milliseconds(600));
}

}  // namespace
}  // namespace donagate::daemon
