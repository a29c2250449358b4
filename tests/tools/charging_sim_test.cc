// tools/charging_sim as a black box: the HTTP contract of docs/charging.md, idempotency, fault
// injection, admin endpoints, input files and the SIGTERM debit log.
#include <gtest/gtest.h>

#include <chrono>
#include <fstream>
#include <sstream>

#include "tests/common/test_env.h"
#include "tools/charging_sim/sim_process.h"

namespace donagate::testing {
namespace {

using boost::beast::http::verb;
using namespace std::chrono_literals;

std::string Sim() { return BinaryPath("tools/charging_sim/charging_sim"); }

std::string ChargeBody(const std::string& key, int64_t amount, const std::string& msisdn = "84911111111") {
  return nlohmann::json{{"key", key}, {"msisdn", msisdn}, {"amount_vnd", amount}, {"units", 1},
                        {"campaign", "c"}, {"operator", "viettel"}}
      .dump();
}

TEST(ChargingSimTest, ContractAndIdempotency) {
  ChargingSimProcess sim(Sim(), FreeTcpPort(), {"--default-balance", "50000"});
  auto first = sim.Request(verb::post, "/v1/charges", ChargeBody("don-1", 20000));
  ASSERT_EQ(first.status, 200);
  EXPECT_EQ(first.body["result"], "charged");
  std::string reference = first.body["reference"];
  auto replay = sim.Request(verb::post, "/v1/charges", ChargeBody("don-1", 20000));
  EXPECT_EQ(replay.status, 200);
  EXPECT_EQ(replay.body["reference"], reference);
  auto conflict = sim.Request(verb::post, "/v1/charges", ChargeBody("don-1", 30000));
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.body["result"], "rejected");
  EXPECT_EQ(sim.Balance("84911111111"), 30000);

  auto poor = sim.Request(verb::post, "/v1/charges", ChargeBody("don-2", 40000));
  EXPECT_EQ(poor.status, 402);
  EXPECT_EQ(poor.body["result"], "insufficient_funds");

  auto status = sim.Request(verb::get, "/v1/charges/don-1");
  EXPECT_EQ(status.status, 200);
  EXPECT_EQ(status.body["result"], "charged");
  EXPECT_EQ(status.body["reference"], reference);
  EXPECT_EQ(status.body["amount_vnd"], 20000);
  EXPECT_EQ(sim.Request(verb::get, "/v1/charges/don-2").body["result"], "insufficient_funds");
  auto missing = sim.Request(verb::get, "/v1/charges/don-404");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.body["result"], "not_found");
  // A wrong path is a 404 too, but without result:"not_found", so no client mistakes it.
  auto wrong_path = sim.Request(verb::get, "/v2/charges/don-1");
  EXPECT_EQ(wrong_path.status, 404);
  EXPECT_FALSE(wrong_path.body.contains("result"));

  EXPECT_EQ(sim.Request(verb::post, "/v1/charges", "{not json").status, 400);
  EXPECT_EQ(sim.Request(verb::post, "/v1/charges", ChargeBody(std::string(31, 'k'), 1)).status, 400);
  EXPECT_EQ(sim.Request(verb::post, "/v1/charges", ChargeBody("don-3", 1, "+84911")).status, 400);
  EXPECT_EQ(sim.Request(verb::post, "/v1/charges", ChargeBody("don-3", -1)).status, 400);
  EXPECT_EQ(sim.Request(verb::get, "/v1/charges").status, 405);
  EXPECT_EQ(sim.Debits()["debits"].size(), 1u);
}

TEST(ChargingSimTest, RefundsOncePerKey) {
  ChargingSimProcess sim(Sim(), FreeTcpPort(), {"--default-balance", "50000"});
  ASSERT_EQ(sim.Request(verb::post, "/v1/charges", ChargeBody("don-1", 20000)).status, 200);
  std::string refund = nlohmann::json{{"amount_vnd", 20000}}.dump();
  EXPECT_EQ(sim.Request(verb::post, "/v1/charges/don-1/refund", nlohmann::json{{"amount_vnd", 90000}}.dump()).status, 409);
  EXPECT_EQ(sim.Request(verb::post, "/v1/charges/don-1/refund", refund).body["result"], "refunded");
  EXPECT_EQ(sim.Request(verb::post, "/v1/charges/don-1/refund", refund).status, 200);
  EXPECT_EQ(sim.Request(verb::post, "/v1/charges/don-9/refund", refund).status, 404);
  EXPECT_EQ(sim.Balance("84911111111"), 50000);
  EXPECT_EQ(sim.Debits()["refunds"].size(), 1u);
}

TEST(ChargingSimTest, TokenProtectsEveryEndpoint) {
  ChargingSimProcess sim(Sim(), FreeTcpPort(), {"--token", "t0k"});
  EXPECT_EQ(sim.Request(verb::post, "/v1/charges", ChargeBody("don-1", 1)).status, 401);
  EXPECT_EQ(sim.Request(verb::get, "/v1/debits").status, 401);
  EXPECT_EQ(sim.Request(verb::post, "/v1/admin/config", R"({"fail_rate":1})").status, 401);
  EXPECT_EQ(sim.Request(verb::post, "/v1/charges", ChargeBody("don-1", 1), "t0k").status, 200);
  EXPECT_EQ(sim.DebitsFor("don-1", "t0k"), 1);
}

TEST(ChargingSimTest, RuntimeConfigIsValidated) {
  ChargingSimProcess sim(Sim(), FreeTcpPort(), {});
  EXPECT_EQ(sim.Request(verb::post, "/v1/admin/config", R"({"fail_rate":1.5})").status, 400);
  EXPECT_EQ(sim.Request(verb::post, "/v1/admin/config", R"({"fail_rat":0.5})").status, 400);
  EXPECT_EQ(sim.Request(verb::post, "/v1/admin/config", R"({"latency_ms":"slow"})").status, 400);
  EXPECT_EQ(sim.Request(verb::post, "/v1/admin/config", "[]").status, 400);
  ASSERT_TRUE(sim.SetConfig({{"fail_rate", 1.0}}));
  auto outage = sim.Request(verb::post, "/v1/charges", ChargeBody("don-1", 1));
  EXPECT_EQ(outage.status, 503);
  EXPECT_EQ(sim.Request(verb::get, "/v1/charges/don-1").status, 503);
  EXPECT_EQ(sim.Debits()["debits"].size(), 0u) << "admin endpoints keep working during an outage";
  EXPECT_EQ(sim.Request(verb::get, "/v1/admin/config").body["fail_rate"], 1.0);
  ASSERT_TRUE(sim.SetConfig({{"fail_rate", 0.0}}));
  EXPECT_EQ(sim.Request(verb::get, "/v1/charges/don-1").status, 404) << "the 503 must not have stored anything";
}

TEST(ChargingSimTest, FaultsHappenAfterTheDebit) {
  ChargingSimProcess sim(Sim(), FreeTcpPort(), {"--lost-response-rate", "1"});
  auto lost = sim.Request(verb::post, "/v1/charges", ChargeBody("don-1", 1000));
  EXPECT_EQ(lost.status, 0) << "expected the connection to close without an answer";
  EXPECT_EQ(sim.DebitsFor("don-1"), 1);
  EXPECT_EQ(sim.Request(verb::get, "/v1/charges/don-1").body["result"], "charged");

  ASSERT_TRUE(sim.SetConfig({{"lost_response_rate", 0.0}, {"timeout_rate", 1.0}, {"timeout_delay_ms", 200}}));
  auto started = std::chrono::steady_clock::now();
  auto late = sim.Request(verb::post, "/v1/charges", ChargeBody("don-2", 1000));
  EXPECT_GE(std::chrono::steady_clock::now() - started, 190ms);
  EXPECT_EQ(late.status, 200);

  ASSERT_TRUE(sim.SetConfig({{"timeout_rate", 0.0}, {"latency_ms", 100}}));
  started = std::chrono::steady_clock::now();
  EXPECT_EQ(sim.Request(verb::get, "/v1/charges/don-2").status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - started, 95ms);
  EXPECT_EQ(sim.Debits()["debits"].size(), 2u);
}

TEST(ChargingSimTest, BalanceAndBarredFiles) {
  std::string dir = MakeTempDir("charging-sim");
  std::ofstream(dir + "/balances.csv") << "# msisdn,balance\n84900000001,60000\n84900000002 0\n";
  std::ofstream(dir + "/barred.txt") << "84900000003\n";
  ChargingSimProcess sim(Sim(), FreeTcpPort(),
                         {"--balances", dir + "/balances.csv", "--barred", dir + "/barred.txt", "--default-balance", "7"});
  EXPECT_EQ(sim.Balance("84900000001"), 60000);
  EXPECT_EQ(sim.Balance("84900000002"), 0);
  EXPECT_EQ(sim.Balance("84900000009"), 7);
  auto barred = sim.Request(verb::post, "/v1/charges", ChargeBody("don-1", 1, "84900000003"));
  EXPECT_EQ(barred.status, 403);
  EXPECT_EQ(barred.body["result"], "barred");

  std::ofstream(dir + "/bad.csv") << "84900000001,lots\n";
  EXPECT_THROW(ChargingSimProcess(Sim(), FreeTcpPort(), {"--balances", dir + "/bad.csv"}), std::runtime_error);
}

TEST(ChargingSimTest, SigtermWritesTheDebitLog) {
  std::string dir = MakeTempDir("charging-sim-log");
  ChargingSimProcess sim(Sim(), FreeTcpPort(), {"--debit-log", dir + "/debits.csv"});
  ASSERT_EQ(sim.Request(verb::post, "/v1/charges", ChargeBody("don-1", 20000)).status, 200);
  ASSERT_EQ(sim.Request(verb::post, "/v1/charges", ChargeBody("don-1", 20000)).status, 200);
  ASSERT_EQ(sim.Request(verb::post, "/v1/charges", ChargeBody("don-2-1", 5000, "84922222222")).status, 200);
  EXPECT_EQ(sim.Terminate(), 0);
  std::ifstream in(dir + "/debits.csv");
  ASSERT_TRUE(in);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0], "key,msisdn,amount,at");
  EXPECT_EQ(lines[1].rfind("don-1,84911111111,20000,20", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind("don-2-1,84922222222,5000,20", 0), 0u) << lines[2];
}

}  // namespace
}  // namespace donagate::testing
