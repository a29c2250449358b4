#include "daemon/logging.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>
#include <vector>

#include "tests/common/test_env.h"

namespace donagate::daemon {
namespace {

std::vector<std::string> ReadLines(const std::string& path) {
  FlushLogs();
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

class LoggingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("logging_test");
    path_ = dir_ + "/donagated.log";
    config_.file = path_;
    config_.max_repeats_per_minute = 0;
  }
  void TearDown() override {
    config::LogConfig stderr_config;  // leave the process logging to stderr
    std::string error;
    SetupLogging(stderr_config, &error);
  }
  void Configure() {
    std::string error;
    ASSERT_TRUE(SetupLogging(config_, &error)) << error;
  }

  std::string dir_;
  std::string path_;
  config::LogConfig config_;
};

TEST_F(LoggingTest, KeyValueLinesCarryTimestampLevelAndComponent) {
  Configure();
  Logger("link")->info("event=bound link={} {}", "opa", Kv("peer", "SMSC one"));
  Logger("pipeline")->warn("plain words, not key=value");
  const auto lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_TRUE(std::regex_match(
      lines[0], std::regex(R"(ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=info component=link event=bound link=opa peer="SMSC one")")))
      << lines[0];
  EXPECT_TRUE(std::regex_search(lines[1], std::regex(R"( level=warn component=pipeline msg="plain words, not key=value"$)")))
      << lines[1];
}

TEST_F(LoggingTest, JsonLinesAreOneObjectPerEvent) {
  config_.format = config::LogFormat::kJson;
  Configure();
  Logger("store")->error("event=commit_failed batch={} {}", 64, Kv("reason", "server closed the \"connection\""));
  Logger("http")->info("free text with \"quotes\"");
  const auto lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 2u);
  const auto first = nlohmann::json::parse(lines[0]);
  EXPECT_EQ(first["level"], "error");
  EXPECT_EQ(first["component"], "store");
  EXPECT_EQ(first["event"], "commit_failed");
  EXPECT_EQ(first["batch"], "64");
  EXPECT_EQ(first["reason"], "server closed the \"connection\"");
  EXPECT_TRUE(std::regex_match(first["ts"].get<std::string>(),
                               std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")));
  const auto second = nlohmann::json::parse(lines[1]);
  EXPECT_EQ(second["msg"], "free text with \"quotes\"");
}

TEST_F(LoggingTest, PerComponentLevels) {
  config_.level = config::LogLevel::kWarn;
  config_.components["link"] = config::LogLevel::kDebug;
  Configure();
  Logger("link")->debug("event=pdu_in");
  Logger("store")->info("event=should_not_appear");
  Logger("store")->warn("event=slow_commit");
  const auto lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("component=link event=pdu_in"), std::string::npos);
  EXPECT_NE(lines[1].find("component=store event=slow_commit"), std::string::npos);
}

TEST_F(LoggingTest, DefaultLoggerWritesAsMainInTheSameFormat) {
  Configure();
  spdlog::info("link={} event=start", "opa");
  const auto lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(" level=info component=main link=opa event=start"), std::string::npos) << lines[0];
}

TEST_F(LoggingTest, MsisdnsAreMaskedByDefault) {
  Configure();
  EXPECT_EQ(Masked("84912345678"), "849123****");
  EXPECT_EQ(Masked("123"), "1****") << "billing::MaskMsisdn's rule: short inputs keep half";
  Logger("pipeline")->info("event=mo msisdn={} text=\"CV 5\"", Masked("84912345678"));
  // The safety net: a caller that forgot Masked() still leaks nothing.
  Logger("pipeline")->info("event=mo source_addr=84987654321 raw=0912345678 donation_id=123456789012");
  const auto lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find("msisdn=849123**** "), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find("source_addr=849876**** raw=091234**** donation_id=123456789012"), std::string::npos)
      << lines[1];
  for (const auto& line : lines) {
    EXPECT_FALSE(std::regex_search(line, std::regex(R"(84\d{9})"))) << line;
  }
}

TEST_F(LoggingTest, MaskingCanBeTurnedOff) {
  config_.mask_msisdn = false;
  Configure();
  EXPECT_EQ(Masked("84912345678"), "84912345678");
  Logger("pipeline")->info("event=mo msisdn={}", Masked("84912345678"));
  const auto lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("msisdn=84912345678"), std::string::npos);
}

TEST_F(LoggingTest, IdenticalMessagesBeyondTheLimitAreSuppressed) {
  config_.max_repeats_per_minute = 3;
  Configure();
  for (int i = 0; i < 50; ++i) Logger("link")->warn("event=connect_failed link=opa error=\"Connection refused\"");
  Logger("link")->warn("event=connect_failed link=opb error=\"Connection refused\"");
  const auto lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 4u) << "3 of the flapping link, 1 of the other";
  EXPECT_NE(lines[3].find("link=opb"), std::string::npos);
}

TEST(RepeatLimiter, ReportsHowManyWereSuppressed) {
  RepeatLimiter limiter(2, std::chrono::seconds(10));
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  uint64_t suppressed = 99;
  EXPECT_TRUE(limiter.Allow("k", &suppressed, t0));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_TRUE(limiter.Allow("k", &suppressed, t0 + std::chrono::seconds(1)));
  for (int i = 0; i < 7; ++i) EXPECT_FALSE(limiter.Allow("k", &suppressed, t0 + std::chrono::seconds(2)));
  EXPECT_TRUE(limiter.Allow("other", &suppressed, t0 + std::chrono::seconds(2)));
  EXPECT_EQ(suppressed, 0u);
  EXPECT_FALSE(limiter.Allow("k", &suppressed, t0 + std::chrono::seconds(9)));
  EXPECT_TRUE(limiter.Allow("k", &suppressed, t0 + std::chrono::seconds(10)));
  EXPECT_EQ(suppressed, 8u);
  EXPECT_TRUE(limiter.Allow("k", &suppressed, t0 + std::chrono::seconds(11)));
  EXPECT_EQ(suppressed, 0u);
}

TEST_F(LoggingTest, SuppressedCountIsReportedOnTheNextWrittenLine) {
  config_.max_repeats_per_minute = 1;
  SetRepeatWindowForTesting(std::chrono::milliseconds(300));
  Configure();
  SetRepeatWindowForTesting(std::chrono::minutes(1));
  for (int i = 0; i < 5; ++i) Logger("link")->warn("event=connect_failed link=opa");
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  Logger("link")->warn("event=connect_failed link=opa");
  config_.format = config::LogFormat::kJson;
  Configure();
  for (int i = 0; i < 3; ++i) Logger("link")->warn("event=connect_failed link=opa");
  const auto lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_TRUE(lines[0].ends_with("component=link event=connect_failed link=opa")) << lines[0];
  EXPECT_TRUE(lines[1].ends_with("component=link event=connect_failed link=opa suppressed=4")) << lines[1];
  EXPECT_EQ(nlohmann::json::parse(lines[2])["event"], "connect_failed");
}

TEST_F(LoggingTest, ReopenAfterRenameWritesToTheNewFile) {
  Configure();
  Logger("main")->info("event=before_rotate");
  ASSERT_EQ(std::rename(path_.c_str(), (path_ + ".1").c_str()), 0);
  Logger("main")->info("event=still_old_file");
  ReopenLogFiles();
  Logger("main")->info("event=after_rotate");
  const auto old_lines = ReadLines(path_ + ".1");
  const auto new_lines = ReadLines(path_);
  ASSERT_EQ(old_lines.size(), 2u);
  EXPECT_NE(old_lines[1].find("event=still_old_file"), std::string::npos);
  ASSERT_EQ(new_lines.size(), 1u);
  EXPECT_NE(new_lines[0].find("event=after_rotate"), std::string::npos);
}

TEST_F(LoggingTest, UnwritableFileIsReportedAndKeepsThePreviousSetup) {
  Configure();
  config::LogConfig bad = config_;
  bad.file = dir_ + "/no/such/dir/x.log";
  std::string error;
  EXPECT_FALSE(SetupLogging(bad, &error));
  EXPECT_NE(error.find("no/such/dir/x.log: No such file or directory"), std::string::npos) << error;
  Logger("main")->info("event=still_here");
  const auto lines = ReadLines(path_);
  ASSERT_EQ(lines.size(), 1u);
}

TEST(Kv, QuotesOnlyWhenNeeded) {
  EXPECT_EQ(Kv("link", "opa"), "link=opa");
  EXPECT_EQ(Kv("why", "bind refused"), "why=\"bind refused\"");
  EXPECT_EQ(Kv("x", ""), "x=\"\"");
  EXPECT_EQ(Kv("x", "a\"b\\c\nd"), "x=\"a\\\"b\\\\c\\nd\"");
  EXPECT_EQ(Kv("x", "k=v"), "x=\"k=v\"");
}

}  // namespace
}  // namespace donagate::daemon
