// The pipeline test harness shared by pipeline_test.cc and pipeline_keywords_test.cc: a
// config with one operator ("opa", link "opa-1", in-process charging), a deliver_sm builder,
// and a Pipeline + IngestWriter on a real PostgreSQL database driven from one io thread.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>
#include <thread>

#include "billing/store/migrate.h"
#include "daemon/ingest_writer.h"
#include "daemon/link_manager.h"
#include "daemon/pipeline.h"
#include "tests/common/test_pg.h"

namespace donagate::daemon::pipeline_testing {

using donagate::testing::CreateFreshDatabase;

inline config::Config TestConfig(const std::string& conninfo) {
  config::Config c;
  config::SmscLink link;
  link.name = "opa-1";
  link.operator_name = "opa";
  c.links.push_back(link);
  config::Campaign campaign;
  campaign.name = "Vi mien Trung";
  campaign.max_units_per_day_per_msisdn = 8;
  c.campaigns.push_back(campaign);
  config::ChargingBackendConfig charging;
  charging.operator_name = "opa";
  charging.backend = config::ChargingBackendKind::kInProcess;
  charging.initial_balance_vnd = 1000000;
  c.charging.push_back(charging);
  c.database.conninfo = config::Secret("test", conninfo);
  c.pipeline.instance_id = "test-1";
  return c;
}

inline smpp::Pdu DeliverSm(const std::string& from, const std::string& to, const std::string& text,
                    uint8_t esm_class = 0, uint8_t data_coding = 0) {
  smpp::Pdu pdu = smpp::MakePdu(smpp::CommandId::kDeliverSm, 1);
  auto& body = std::get<smpp::DeliverSm>(pdu.body);
  body.source_addr = from;
  body.destination_addr = to;
  body.esm_class = esm_class;
  body.data_coding = data_coding;
  body.short_message = text;
  return pdu;
}

// An io_context with one thread, and a pipeline + ingest writer on a database.
class Harness {
 public:
  Harness(config::Config config, IngestWriterOptions wo = {})
      : config_(std::move(config)), work_(boost::asio::make_work_guard(io_)) {
    thread_ = std::thread([this] { io_.run(); });
    wo.conninfo = config_.database.conninfo.Reveal();
    wo.store_options.instance_id = config_.pipeline.instance_id;
    wo.store_options.connect_timeout_s = 2;
    writer_ = std::make_unique<IngestWriter>(io_.get_executor(), wo);
    pipeline_ = std::make_unique<Pipeline>(config_, *writer_);
    writer_->Start();
  }
  ~Harness() {
    // The writer's completions run on io_ and use the pipeline: stop the writer, let io_ run
    // dry, and only then destroy the pipeline.
    writer_->Stop();
    work_.reset();
    thread_.join();
    pipeline_.reset();
  }

  // Hands one PDU to the pipeline and waits for the link completion's status.
  uint32_t Deliver(const smpp::Pdu& pdu, const std::string& link = "opa-1") {
    auto promise = std::make_shared<std::promise<uint32_t>>();
    auto future = promise->get_future();
    LinkInfo info;
    info.link_name = link;
    info.operator_name = "opa";
    pipeline_->OnMessage(info, pdu, [promise](uint32_t status) { promise->set_value(status); });
    EXPECT_EQ(future.wait_for(std::chrono::seconds(20)), std::future_status::ready);
    return future.get();
  }

  config::Config& config() { return config_; }
  Pipeline& pipeline() { return *pipeline_; }
  boost::asio::io_context& io() { return io_; }

 private:
  config::Config config_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  std::thread thread_;
  std::unique_ptr<IngestWriter> writer_;
  std::unique_ptr<Pipeline> pipeline_;
};

inline std::string Migrated(const std::string& hint) {
  std::string db = CreateFreshDatabase(hint);
  billing::StoreStatus s = billing::Migrate(db);
  EXPECT_TRUE(s.ok()) << s.ToString();
  return db;
}

}  // namespace donagate::daemon::pipeline_testing
