// donagated --check-config, --help, --version and the config-error exit path, run as a user
// would run them: the built binary, its exit code and its output.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/common/test_env.h"

namespace {

using donagate::testing::BinaryPath;
using donagate::testing::MakeTempDir;
using donagate::testing::SourcePath;

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::vector<std::string> err_lines;
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs donagated with `args` (already shell-quoted) and the given extra environment.
RunResult RunDaemon(const std::string& args, const std::string& env = "") {
  static const std::string dir = MakeTempDir("checkcfg");
  const std::string out_path = dir + "/out", err_path = dir + "/err";
  std::string cmd = "env " + env + " '" + BinaryPath("daemon/donagated") + "' " + args + " >'" + out_path +
                    "' 2>'" + err_path + "'";
  int status = std::system(cmd.c_str());
  RunResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = ReadAll(out_path);
  std::istringstream err(ReadAll(err_path));
  for (std::string line; std::getline(err, line);) r.err_lines.push_back(line);
  return r;
}

const char* kExampleEnv =
    "DONAGATE_SMSC_OPA_PASSWORD=opapass DONAGATE_SMSC_OPB_PASSWORD=opbpass "
    "DONAGATE_DATABASE_URL=postgresql:///donagate DONAGATE_CHARGING_TOKEN=tok DONAGATE_ADMIN_TOKEN=adm";

TEST(CheckConfigTest, ExampleConfigIsValid) {
  RunResult r = RunDaemon("--check-config '" + SourcePath("config/donagate.example.toml") + "'", kExampleEnv);
  EXPECT_EQ(r.exit_code, 0) << ::testing::PrintToString(r.err_lines);
  EXPECT_EQ(r.out, "config OK: 2 links, 1 campaign, 2 charging backends\n");
  EXPECT_TRUE(r.err_lines.empty()) << ::testing::PrintToString(r.err_lines);
}

TEST(CheckConfigTest, DemoConfigIsValid) {
  RunResult r = RunDaemon("--check-config '" + SourcePath("config/donagate.demo.toml") + "'",
                    "DONAGATE_DEMO_SMSC_PASSWORD=demo DONAGATE_DEMO_CB_SECRET=demo-cb "
                    "DONAGATE_DATABASE_URL=postgresql:///donagate");
  EXPECT_EQ(r.exit_code, 0) << ::testing::PrintToString(r.err_lines);
  // The demo's campaigns evolve with the demo; its two links and two backends are fixed.
  EXPECT_TRUE(std::regex_match(r.out, std::regex("config OK: 2 links, [0-9]+ campaigns?, 2 charging backends\n")))
      << r.out;
}

TEST(CheckConfigTest, ThreeMistakesGiveThreeLinesAndExit2) {
  const std::string path = SourcePath("tests/config/testdata/three_mistakes.toml");
  RunResult r = RunDaemon("--check-config '" + path + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  ASSERT_EQ(r.err_lines.size(), 3u) << ::testing::PrintToString(r.err_lines);
  const std::regex shape(R"(^(.+):(\d+):(\d+): ([a-z_]+\[\d+\]\.[a-z_]+): (.+)$)");
  for (const std::string& line : r.err_lines) {
    std::smatch m;
    ASSERT_TRUE(std::regex_match(line, m, shape)) << line;
    EXPECT_EQ(m[1].str(), path);
  }
  EXPECT_EQ(r.err_lines[0], path + ":9:1: smsc[0].windw: unknown key (did you mean 'window'?)");
  EXPECT_EQ(r.err_lines[1], path + ":12:1: smsc[1].password_env: missing password source: set password_env or password_file");
  EXPECT_EQ(r.err_lines[2], path + ":16:8: smsc[1].port: 70000 is outside 1..65535");
}

TEST(CheckConfigTest, MissingSecretIsNamedButNeverPrinted) {
  // Only the variable that is unset is reported; the ones that are set never appear by value.
  std::string env = kExampleEnv;
  env.replace(env.find("DONAGATE_ADMIN_TOKEN=adm"), 24, "DONAGATE_ADMIN_TOKEN=");
  RunResult r = RunDaemon("--check-config '" + SourcePath("config/donagate.example.toml") + "'", env);
  EXPECT_EQ(r.exit_code, 2);
  ASSERT_EQ(r.err_lines.size(), 1u) << ::testing::PrintToString(r.err_lines);
  EXPECT_NE(r.err_lines[0].find("admin.token_env: environment variable DONAGATE_ADMIN_TOKEN is empty"), std::string::npos);
  EXPECT_EQ(r.err_lines[0].find("opapass"), std::string::npos);
}

TEST(CheckConfigTest, ConfigWithErrorsDoesNotStartTheDaemon) {
  RunResult r = RunDaemon("--config '" + SourcePath("tests/config/testdata/three_mistakes.toml") + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err_lines.size(), 3u) << ::testing::PrintToString(r.err_lines);
}

TEST(CheckConfigTest, UnreadableFile) {
  RunResult r = RunDaemon("--check-config /nonexistent/donagate.toml");
  EXPECT_EQ(r.exit_code, 2);
  ASSERT_EQ(r.err_lines.size(), 1u);
  EXPECT_EQ(r.err_lines[0], "/nonexistent/donagate.toml: cannot read the configuration file");
}

TEST(CheckConfigTest, HelpVersionAndUsage) {
  RunResult help = RunDaemon("--help");
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--check-config"), std::string::npos);
  EXPECT_NE(help.out.find("--config"), std::string::npos);
  RunResult version = RunDaemon("--version");
  EXPECT_EQ(version.exit_code, 0);
  EXPECT_EQ(version.out, std::string("donagated ") + DONAGATE_VERSION + "\n");
  EXPECT_EQ(RunDaemon("--no-such-flag").exit_code, 64);
  RunResult none = RunDaemon("");
  EXPECT_EQ(none.exit_code, 64);
  ASSERT_FALSE(none.err_lines.empty());
  EXPECT_NE(none.err_lines[0].find("--config FILE is required"), std::string::npos);
}

}  // namespace
