// The config loader: every check reports file:line:col: key: reason, all problems in one run.
#include "config/loader.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "tests/common/test_env.h"

namespace donagate::config {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using donagate::testing::MakeTempDir;
using donagate::testing::SourcePath;

std::map<std::string, std::string> DefaultEnv() {
  return {{"TEST_SMSC_PASSWORD", "pw123"},
          {"DONAGATE_SMSC_OPA_PASSWORD", "opapass"},
          {"DONAGATE_SMSC_OPB_PASSWORD", "opbpass"},
          {"DONAGATE_DATABASE_URL", "postgresql:///donagate"},
          {"DONAGATE_CHARGING_TOKEN", "charging-token"},
          {"DONAGATE_ADMIN_TOKEN", "admin-token"},
          {"DONAGATE_DEMO_SMSC_PASSWORD", "demo"},
          {"DONAGATE_DEMO_CB_SECRET", "demo-cb"}};
}

LoadOptions Options(std::map<std::string, std::string> env = DefaultEnv()) {
  LoadOptions o;
  o.getenv = [env](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  o.hostname = [] { return std::string("testhost"); };
  return o;
}

// A valid base; tests append or replace lines. Line numbers below refer to this layout.
const char* kBase = R"([[smsc]]
name = "opa-1"
operator = "opa"
host = "127.0.0.1"
port = 2775
system_id = "donagate"
password_env = "TEST_SMSC_PASSWORD"

[database]
conninfo = "host=/tmp dbname=donagate"

[[charging]]
operator = "opa"
backend = "in_process"
)";

LoadResult Load(const std::string& text, const LoadOptions& options = Options(),
                const std::string& base_dir = "/nonexistent") {
  return LoadConfigFromString(text, "t.toml", base_dir, options);
}

std::vector<std::string> Lines(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics) out.push_back(d.ToString());
  return out;
}

// Exactly one diagnostic, returned as text.
std::string Only(const LoadResult& r) {
  EXPECT_EQ(r.diagnostics.size(), 1u) << ::testing::PrintToString(Lines(r));
  return r.diagnostics.empty() ? "" : r.diagnostics[0].ToString();
}

std::string Replace(std::string text, const std::string& from, const std::string& to) {
  size_t pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) text.replace(pos, from.size(), to);
  return text;
}

std::string WriteFile(const std::string& dir, const std::string& name, const std::string& content) {
  std::string path = dir + "/" + name;
  std::ofstream(path) << content;
  return path;
}

// --- Whole files --------------------------------------------------------------------------------

TEST(LoaderTest, ExampleConfigLoadsWithoutDiagnostics) {
  LoadResult r = LoadConfig(SourcePath("config/donagate.example.toml"), Options());
  EXPECT_TRUE(r.ok()) << ::testing::PrintToString(Lines(r));
  const Config& c = r.config;
  ASSERT_EQ(c.links.size(), 2u);
  EXPECT_EQ(c.links[0].name, "opa-1");
  EXPECT_EQ(c.links[0].password.Reveal(), "opapass");
  EXPECT_EQ(c.links[0].password.source(), "env:DONAGATE_SMSC_OPA_PASSWORD");
  EXPECT_EQ(c.links[0].mo_id_tlv, std::optional<uint16_t>(0x1401));
  EXPECT_EQ(c.links[1].mode, LinkMode::kServer);
  EXPECT_EQ(c.links[1].allowed_ips.size(), 2u);
  ASSERT_EQ(c.campaigns.size(), 1u);
  EXPECT_EQ(c.campaigns[0].name, "Vi mien Trung");
  // 2026-01-01T00:00:00+07:00 is 2025-12-31T17:00:00Z.
  ASSERT_TRUE(c.campaigns[0].active_from);
  EXPECT_EQ(c.campaigns[0].active_from->time_since_epoch().count(), 1767200400);
  ASSERT_EQ(c.charging.size(), 2u);
  EXPECT_EQ(c.charging[1].backend, ChargingBackendKind::kOperatorBilled);
  EXPECT_EQ(c.database.conninfo.Reveal(), "postgresql:///donagate");
  EXPECT_TRUE(c.admin.enabled);
  EXPECT_EQ(c.admin.token.Reveal(), "admin-token");
  EXPECT_EQ(c.log.components.at("link"), LogLevel::kInfo);
  EXPECT_EQ(c.pipeline.instance_id, "gw-1");
}

TEST(LoaderTest, DemoConfigLoadsWithoutDiagnostics) {
  LoadResult r = LoadConfig(SourcePath("config/donagate.demo.toml"), Options());
  EXPECT_TRUE(r.ok()) << ::testing::PrintToString(Lines(r));
  ASSERT_EQ(r.config.links.size(), 2u);
  EXPECT_EQ(r.config.links[0].port, 2775);
  EXPECT_EQ(r.config.links[1].port, 2776);
  // The demo shows both operator protocols: CAMARA Carrier Billing and Diameter Ro.
  EXPECT_EQ(FindCharging(r.config, "opa")->backend, ChargingBackendKind::kCarrierBilling);
  EXPECT_EQ(FindCharging(r.config, "opa")->url, "http://127.0.0.1:8088/carrier-billing/v0.4");
  EXPECT_EQ(FindCharging(r.config, "opb")->backend, ChargingBackendKind::kDiameter);
  EXPECT_EQ(FindCharging(r.config, "opb")->peers, std::vector<std::string>{"127.0.0.1:3868"});
}

TEST(LoaderTest, MinimalConfigGetsDefaultsEverywhereElse) {
  LoadResult r = LoadConfig(SourcePath("tests/config/testdata/minimal.toml"), Options());
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(Lines(r));
  const Config& c = r.config;
  EXPECT_EQ(c.links[0].mode, LinkMode::kClient);
  EXPECT_EQ(c.links[0].window, 10);
  EXPECT_EQ(c.links[0].throttle_pause_s, 60);
  EXPECT_TRUE(c.links[0].tls.verify_peer);
  EXPECT_FALSE(c.links[0].tls.enabled);
  ASSERT_EQ(c.campaigns.size(), 1u);
  EXPECT_EQ(c.campaigns[0].keyword, "CV");
  EXPECT_EQ(c.campaigns[0].shortcode, "1407");
  EXPECT_EQ(c.campaigns[0].unit_price_vnd, 20000);
  EXPECT_EQ(c.campaigns[0].max_units_per_message, 100);
  EXPECT_THAT(c.campaigns[0].templates.success, HasSubstr("{amount}"));
  EXPECT_EQ(c.database.batch_size, 256);
  EXPECT_EQ(c.database.batch_linger_ms, 2);
  EXPECT_EQ(c.pipeline.temp_error_status, TempErrorStatus::kAppn);
  EXPECT_EQ(c.pipeline.instance_id, "testhost");
  EXPECT_EQ(c.http.listen, "127.0.0.1:9464");
  EXPECT_FALSE(c.admin.enabled);
  EXPECT_TRUE(c.log.mask_msisdn);
  EXPECT_EQ(c.log.file, "");
  EXPECT_EQ(c.charging[0].initial_balance_vnd, 1000000);
  EXPECT_EQ(c.source_path, SourcePath("tests/config/testdata/minimal.toml"));
}

TEST(LoaderTest, ThreeMistakesGiveExactlyThreeDiagnosticsWithPositions) {
  std::string path = SourcePath("tests/config/testdata/three_mistakes.toml");
  LoadResult r = LoadConfig(path, Options());
  ASSERT_EQ(r.diagnostics.size(), 3u) << ::testing::PrintToString(Lines(r));
  EXPECT_EQ(r.diagnostics[0].ToString(), path + ":9:1: smsc[0].windw: unknown key (did you mean 'window'?)");
  EXPECT_EQ(r.diagnostics[1].ToString(),
            path + ":12:1: smsc[1].password_env: missing password source: set password_env or password_file");
  EXPECT_EQ(r.diagnostics[2].ToString(), path + ":16:8: smsc[1].port: 70000 is outside 1..65535");
}

TEST(LoaderTest, UnreadableFileIsOneDiagnostic) {
  LoadResult r = LoadConfig("/nonexistent/donagate.toml", Options());
  EXPECT_EQ(Only(r), "/nonexistent/donagate.toml: cannot read the configuration file");
}

TEST(LoaderTest, SyntaxErrorIsReportedWithPosition) {
  LoadResult r = Load(std::string(kBase) + "[pipeline]\nmax_inflight = = 3\n");
  std::string d = Only(r);
  EXPECT_THAT(d, ::testing::StartsWith("t.toml:16:"));
  EXPECT_THAT(d, HasSubstr("TOML syntax error"));
}

TEST(LoaderTest, AllErrorsAreReportedInOneRunInFileOrder) {
  std::string text = Replace(kBase, "port = 2775", "port = 0");
  text = Replace(text, "backend = \"in_process\"", "backend = \"carrier-pigeon\"");
  text += "[log]\nlevel = \"loud\"\n[http]\nlisten = \"nowhere\"\n";
  LoadResult r = Load(text);
  auto lines = Lines(r);
  ASSERT_EQ(lines.size(), 4u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "t.toml:5:8: smsc[0].port: 0 is outside 1..65535");
  EXPECT_THAT(lines[1], ::testing::StartsWith("t.toml:14:11: charging[0].backend: \"carrier-pigeon\" is not one of"));
  EXPECT_EQ(lines[2], "t.toml:16:9: log.level: \"loud\" is not one of \"trace\", \"debug\", \"info\", \"warn\", \"error\", \"critical\", \"off\"");
  EXPECT_THAT(lines[3], ::testing::StartsWith("t.toml:18:10: http.listen: 'nowhere' is not host:port"));
}

// --- Unknown keys and types ----------------------------------------------------------------------

TEST(LoaderTest, UnknownKeyWithHint) {
  LoadResult r = Load(std::string(kBase) + "[pipeline]\nmax_inflite = 5\n");
  EXPECT_EQ(Only(r), "t.toml:16:1: pipeline.max_inflite: unknown key (did you mean 'max_inflight'?)");
}

TEST(LoaderTest, UnknownKeyWithoutPlausibleHint) {
  LoadResult r = Load("colour = \"blue\"\n" + std::string(kBase));
  EXPECT_EQ(Only(r), "t.toml:1:1: colour: unknown key");
}

TEST(LoaderTest, UnknownSectionWithHint) {
  LoadResult r = Load(std::string(kBase) + "[databse]\npool_size = 2\n");
  EXPECT_EQ(Only(r), "t.toml:15:2: databse: unknown key (did you mean 'database'?)");
}

TEST(LoaderTest, TypoOfRequiredKeyIsReportedOnceNotAlsoAsMissing) {
  LoadResult r = Load(Replace(kBase, "system_id =", "sytem_id ="));
  EXPECT_EQ(Only(r), "t.toml:6:1: smsc[0].sytem_id: unknown key (did you mean 'system_id'?)");
}

TEST(LoaderTest, WrongTypeIsAnError) {
  LoadResult r = Load(Replace(kBase, "port = 2775", "port = \"2775\""));
  EXPECT_EQ(Only(r), "t.toml:5:8: smsc[0].port: expected an integer, got a string");
  r = Load(std::string(kBase) + "[log]\nmask_msisdn = \"yes\"\n");
  EXPECT_EQ(Only(r), "t.toml:16:15: log.mask_msisdn: expected a boolean (true or false), got a string");
  r = Load(std::string(kBase) + "[database.x]\n");
  EXPECT_THAT(Only(r), HasSubstr("database.x: unknown key"));
}

TEST(LoaderTest, SectionOfWrongShapeIsAnError) {
  LoadResult r = Load("log = 3\n" + std::string(kBase));
  EXPECT_EQ(Only(r), "t.toml:1:7: log: expected a table, got an integer");
  r = Load(Replace(kBase, "[[charging]]", "[charging]"));
  EXPECT_THAT(Only(r), HasSubstr("charging: expected an array of tables (write each entry as [[charging]])"));
}

TEST(LoaderTest, MissingRequiredKeyPointsAtTableHeader) {
  LoadResult r = Load(Replace(kBase, "host = \"127.0.0.1\"\n", ""));
  EXPECT_EQ(Only(r), "t.toml:1:1: smsc[0].host: required key is missing");
}

TEST(LoaderTest, MissingLinksAndDatabaseAreErrors) {
  LoadResult r = Load("[[charging]]\noperator = \"opa\"\nbackend = \"in_process\"\n");
  auto lines = Lines(r);
  ASSERT_EQ(lines.size(), 2u) << ::testing::PrintToString(lines);
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr("smsc: at least one [[smsc]] link is required")));
  EXPECT_THAT(lines, ::testing::Contains(HasSubstr("database: required section [database] is missing")));
}

// --- Ranges --------------------------------------------------------------------------------------

TEST(LoaderTest, RangesAreChecked) {
  struct Case {
    std::string section, line, expect;
  };
  std::vector<Case> cases = {
      {"", "window = 0", "smsc[0].window: 0 is outside 1..1000"},
      {"", "tps = -1", "smsc[0].tps: -1 is outside 0..100000"},
      {"", "source_ton = 7", "smsc[0].source_ton: 7 is outside 0..6"},
      {"", "mo_id_tlv = 0x10000", "smsc[0].mo_id_tlv: 65536 is outside 1..65535"},
      {"", "max_pdu_size = 10", "smsc[0].max_pdu_size: 10 is outside 64..1048576"},
      {"[database]", "batch_size = 0", "database.batch_size: 0 is outside 1..10000"},
      {"[pipeline]", "charge_lease_s = 1", "pipeline.charge_lease_s: 1 is outside 5..3600"},
      {"[pipeline]", "charge_workers = 0", "pipeline.charge_workers: 0 is outside 1..32"},
      {"[pipeline]", "reply_max_inflight = 0", "pipeline.reply_max_inflight: 0 is outside 1..100000"},
      {"[[campaign]]\nname = \"c\"", "unit_price_vnd = 0", "campaign[0].unit_price_vnd: 0 is outside 1..100000000"},
  };
  for (const auto& c : cases) {
    std::string text = kBase;
    if (c.section.empty()) {
      text = Replace(text, "port = 2775\n", "port = 2775\n" + c.line + "\n");
    } else if (c.section == "[database]") {
      text = Replace(text, "[database]\n", "[database]\n" + c.line + "\n");
    } else {
      text += c.section + "\n" + c.line + "\n";
    }
    LoadResult r = Load(text);
    EXPECT_THAT(Only(r), HasSubstr(c.expect)) << c.line;
  }
}

TEST(LoaderTest, EnumValuesAreChecked) {
  LoadResult r = Load(std::string(kBase) + "[pipeline]\ntemp_error_status = \"ESME_RSYSERR\"\n");
  EXPECT_EQ(Only(r), "t.toml:16:21: pipeline.temp_error_status: \"ESME_RSYSERR\" is not one of "
                     "\"ESME_RX_T_APPN\", \"ESME_RTHROTTLED\"");
  r = Load(std::string(kBase) + "[pipeline]\ntemp_error_status = \"ESME_RTHROTTLED\"\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(static_cast<uint32_t>(r.config.pipeline.temp_error_status), 0x58u);
}

TEST(LoaderTest, ReconnectBackoffMinMustNotExceedMax) {
  LoadResult r = Load(Replace(kBase, "port = 2775\n",
                              "port = 2775\nreconnect_backoff_min_s = 30\nreconnect_backoff_max_s = 10\n"));
  EXPECT_EQ(Only(r), "t.toml:7:27: smsc[0].reconnect_backoff_max_s: reconnect_backoff_min_s (30) is "
                     "greater than reconnect_backoff_max_s (10)");
  r = Load(Replace(kBase, "port = 2775\n", "port = 2775\nreconnect_backoff_min_s = 120\n"));
  EXPECT_THAT(Only(r), HasSubstr("smsc[0].reconnect_backoff_min_s: reconnect_backoff_min_s (120) is greater"));
}

TEST(LoaderTest, StatusBackoffMinMustNotExceedMax) {
  LoadResult r = Load(std::string(kBase) + "status_backoff_min_ms = 5000\nstatus_backoff_max_ms = 100\n");
  EXPECT_THAT(Only(r), HasSubstr("charging[0].status_backoff_max_ms: status_backoff_min_ms (5000) is greater"));
}

TEST(LoaderTest, SmppFieldLengthsAreChecked) {
  LoadResult r = Load(Replace(kBase, "system_id = \"donagate\"", "system_id = \"a-very-long-system-id\""));
  EXPECT_THAT(Only(r), HasSubstr("smsc[0].system_id: is 21 characters; SMPP allows at most 15"));
}

// --- Secrets -------------------------------------------------------------------------------------

TEST(LoaderTest, InlinePasswordIsRefusedWithReason) {
  LoadResult r = Load(Replace(kBase, "password_env = \"TEST_SMSC_PASSWORD\"", "password = \"hunter2\""));
  std::string d = Only(r);
  EXPECT_EQ(d, "t.toml:7:12: smsc[0].password: inline secrets are not allowed (the config file is not a "
               "secret store); use password_env or password_file");
  EXPECT_THAT(d, Not(HasSubstr("hunter2")));
}

TEST(LoaderTest, MissingPasswordSource) {
  LoadResult r = Load(Replace(kBase, "password_env = \"TEST_SMSC_PASSWORD\"\n", ""));
  EXPECT_EQ(Only(r), "t.toml:1:1: smsc[0].password_env: missing password source: set password_env or password_file");
}

TEST(LoaderTest, PasswordEnvMustBeSetAndNonEmpty) {
  auto env = DefaultEnv();
  env.erase("TEST_SMSC_PASSWORD");
  LoadResult r = Load(kBase, Options(env));
  EXPECT_EQ(Only(r), "t.toml:7:16: smsc[0].password_env: environment variable TEST_SMSC_PASSWORD is not set");
  env["TEST_SMSC_PASSWORD"] = "";
  r = Load(kBase, Options(env));
  EXPECT_EQ(Only(r), "t.toml:7:16: smsc[0].password_env: environment variable TEST_SMSC_PASSWORD is empty");
}

TEST(LoaderTest, PasswordFromFileRelativeToConfigDirectory) {
  std::string dir = MakeTempDir("cfgsecret");
  WriteFile(dir, "smsc.pw", "filepw\n");
  std::string text = Replace(kBase, "password_env = \"TEST_SMSC_PASSWORD\"", "password_file = \"smsc.pw\"");
  LoadResult r = Load(text, Options(), dir);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(Lines(r));
  EXPECT_EQ(r.config.links[0].password.Reveal(), "filepw");  // one trailing newline dropped
  EXPECT_EQ(r.config.links[0].password.source(), "file:" + dir + "/smsc.pw");
}

TEST(LoaderTest, PasswordFileMustExistAndNotBeEmpty) {
  std::string dir = MakeTempDir("cfgsecret");
  std::string text = Replace(kBase, "password_env = \"TEST_SMSC_PASSWORD\"", "password_file = \"nope.pw\"");
  LoadResult r = Load(text, Options(), dir);
  EXPECT_EQ(Only(r), "t.toml:7:17: smsc[0].password_file: file '" + dir +
                         "/nope.pw' does not exist or is not readable");
  WriteFile(dir, "nope.pw", "\n");
  r = Load(text, Options(), dir);
  EXPECT_EQ(Only(r), "t.toml:7:17: smsc[0].password_file: file '" + dir + "/nope.pw' is empty");
}

TEST(LoaderTest, OnlyOnePasswordSource) {
  LoadResult r = Load(Replace(kBase, "password_env = \"TEST_SMSC_PASSWORD\"",
                              "password_env = \"TEST_SMSC_PASSWORD\"\npassword_file = \"x\""));
  EXPECT_THAT(Only(r), HasSubstr("smsc[0].password_env: set only one of password_env or password_file"));
}

TEST(LoaderTest, SecretValueNeverAppearsInDiagnostics) {
  auto env = DefaultEnv();
  env["TEST_SMSC_PASSWORD"] = "TopSecret99";  // too long for SMPP: reported, but not printed
  LoadResult r = Load(kBase, Options(env));
  std::string d = Only(r);
  EXPECT_THAT(d, HasSubstr("smsc[0].password_env: the password is 11 characters; SMPP allows at most 8"));
  EXPECT_THAT(d, Not(HasSubstr("TopSecret99")));
}

TEST(LoaderTest, DatabaseConninfoSources) {
  LoadResult r = Load(Replace(kBase, "conninfo = \"host=/tmp dbname=donagate\"\n", ""));
  EXPECT_EQ(Only(r), "t.toml:9:1: database.conninfo_env: missing conninfo source: set conninfo_env or conninfo_file");
  r = Load(Replace(kBase, "conninfo = \"host=/tmp dbname=donagate\"", "conninfo_env = \"DONAGATE_DATABASE_URL\""));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.database.conninfo.Reveal(), "postgresql:///donagate");
  r = Load(Replace(kBase, "conninfo = \"host=/tmp dbname=donagate\"",
                   "conninfo = \"a\"\nconninfo_env = \"DONAGATE_DATABASE_URL\""));
  EXPECT_THAT(Only(r), HasSubstr("set only one of conninfo, conninfo_env or conninfo_file"));
}

TEST(LoaderTest, ChargingTokenCannotBeInline) {
  LoadResult r = Load(std::string(kBase) + "token = \"abc\"\n");
  EXPECT_THAT(Only(r), HasSubstr("charging[0].token: inline secrets are not allowed"));
}

TEST(LoaderTest, AdminNeedsTokenWhenEnabled) {
  LoadResult r = Load(std::string(kBase) + "[admin]\nenabled = true\n");
  EXPECT_EQ(Only(r), "t.toml:15:1: admin.token_env: missing token source: set token_env or token_file");
  r = Load(std::string(kBase) + "[admin]\nenabled = true\ntoken_env = \"DONAGATE_ADMIN_TOKEN\"\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.admin.token.Reveal(), "admin-token");
  r = Load(std::string(kBase) + "[admin]\nenabled = true\ntoken_env = \"DONAGATE_ADMIN_TOKEN\"\nlisten = \"127.0.0.1:9464\"\n");
  EXPECT_THAT(Only(r), HasSubstr("admin.listen: must differ from http.listen"));
}

// --- Cross-field checks --------------------------------------------------------------------------

TEST(LoaderTest, DuplicateLinkNames) {
  std::string link = std::string(kBase).substr(0, std::string(kBase).find("[database]"));
  LoadResult r = Load(link + kBase);
  EXPECT_EQ(Only(r), "t.toml:10:8: smsc[1].name: duplicate link name 'opa-1' (also smsc[0])");
}

TEST(LoaderTest, LinkOperatorNeedsChargingBackend) {
  LoadResult r = Load(Replace(kBase, "operator = \"opa\"\nhost", "operator = \"opz\"\nhost"));
  EXPECT_EQ(Only(r), "t.toml:3:12: smsc[0].operator: operator 'opz' has no [[charging]] entry: nobody "
                     "would debit its subscribers");
}

TEST(LoaderTest, DuplicateChargingOperator) {
  LoadResult r = Load(std::string(kBase) + "[[charging]]\noperator = \"opa\"\nbackend = \"operator_billed\"\n");
  EXPECT_THAT(Only(r), HasSubstr("t.toml:16:12: charging[1].operator: operator 'opa' already has a charging backend"));
}

TEST(LoaderTest, CampaignKeywordAndShortcodeUniqueIgnoringCase) {
  std::string text = std::string(kBase) +
                     "[[campaign]]\nname = \"a\"\n[[campaign]]\nname = \"b\"\nkeyword = \"cv\"\n"
                     "[[campaign]]\nname = \"c\"\nshortcode = \"1408\"\n";
  LoadResult r = Load(text);
  EXPECT_EQ(Only(r), "t.toml:19:11: campaign[1].keyword: keyword 'cv' on shortcode 1407 is already used by campaign[0]");
  r = Load(std::string(kBase) + "[[campaign]]\nname = \"a\"\n[[campaign]]\nname = \"a\"\nshortcode = \"1408\"\n");
  EXPECT_THAT(Only(r), HasSubstr("campaign[1].name: duplicate campaign name 'a'"));
}

TEST(LoaderTest, CampaignKeywordAndShortcodeShape) {
  LoadResult r = Load(std::string(kBase) + "[[campaign]]\nname = \"a\"\nkeyword = \"CV2\"\n");
  EXPECT_THAT(Only(r), HasSubstr("campaign[0].keyword: 'CV2' must be 1..20 ASCII letters"));
  r = Load(std::string(kBase) + "[[campaign]]\nname = \"a\"\nshortcode = \"14a7\"\n");
  EXPECT_THAT(Only(r), HasSubstr("campaign[0].shortcode: '14a7' must be 2..15 digits"));
}

TEST(LoaderTest, ActiveWindow) {
  std::string c = std::string(kBase) + "[[campaign]]\nname = \"a\"\n";
  LoadResult r = Load(c + "active_from = 2026-12-01T00:00:00+07:00\nactive_to = \"2026-12-01T00:00:00+07:00\"\n");
  EXPECT_EQ(Only(r), "t.toml:18:13: campaign[0].active_to: must be later than active_from");
  r = Load(c + "active_from = 2026-12-01T00:00:00\n");
  EXPECT_THAT(Only(r), HasSubstr("campaign[0].active_from: needs a UTC offset"));
  r = Load(c + "active_from = \"1 December\"\n");
  EXPECT_THAT(Only(r), HasSubstr("campaign[0].active_from: \"1 December\" is not an RFC 3339 date-time"));
  r = Load(c + "active_from = \"2026-12-01T00:00:00Z\"\nactive_to = 2026-12-31T23:59:59.5+07:00\n");
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(Lines(r));
  EXPECT_EQ(r.config.campaigns[0].active_from->time_since_epoch().count(), 1796083200);
  EXPECT_EQ(r.config.campaigns[0].active_to->time_since_epoch().count(), 1798736399);
}

TEST(LoaderTest, TemplatesAreValidated) {
  std::string c = std::string(kBase) + "[[campaign]]\nname = \"a\"\n[campaign.templates]\n";
  LoadResult r = Load(c + "success = \"Cam on {amout} dong\"\n");
  EXPECT_EQ(Only(r), "t.toml:18:11: campaign[0].templates.success: unknown placeholder {amout} (did you mean {amount}?)");
  r = Load(c + "partial = \"{charged_units/{units}\"\n");
  EXPECT_THAT(Only(r), HasSubstr("campaign[0].templates.partial: unclosed '{' at character 1"));
  r = Load(c + "syntax = \"\"\n");
  EXPECT_THAT(Only(r), HasSubstr("campaign[0].templates.syntax: must not be empty"));
  r = Load(c + "failed = \"Loi {{ref}} {ref}\"\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.campaigns[0].templates.failed, "Loi {{ref}} {ref}");
  r = Load(c + "sucess = \"x\"\n");
  EXPECT_THAT(Only(r), HasSubstr("campaign[0].templates.sucess: unknown key (did you mean 'success'?)"));
}

TEST(LoaderTest, ValidateTemplateDirectly) {
  EXPECT_EQ(ValidateTemplate("{amount} {campaign} {ref} {units} {charged_units} {missing_units} "
                             "{shortcode} {keyword} {unit_price}"),
            "");
  EXPECT_EQ(ValidateTemplate("a } b"), "unmatched '}' at character 3 (write '}}' for a literal brace)");
  EXPECT_EQ(ValidateTemplate("{msisdn}"), "unknown placeholder {msisdn}");
  EXPECT_EQ(ValidateTemplate("{"), "unclosed '{' at character 1 (write '{{' for a literal brace)");
  EXPECT_EQ(ValidateTemplate("{{}}"), "");
}

TEST(LoaderTest, InvalidEnumDoesNotCascade) {
  // A typo in mode or backend is one error, not also "host missing" / "applies to ... only".
  std::string text = Replace(kBase, "host = \"127.0.0.1\"\n", "mode = \"sever\"\nallowed_ips = [\"10.0.0.1\"]\n");
  EXPECT_EQ(Only(Load(text)), "t.toml:4:8: smsc[0].mode: \"sever\" is not one of \"client\", \"server\"");
  text = Replace(kBase, "backend = \"in_process\"", "backend = \"in_proces\"\ninitial_balance_vnd = 5");
  EXPECT_THAT(Only(Load(text)), HasSubstr("charging[0].backend: \"in_proces\" is not one of"));
}

TEST(LoaderTest, ServerOnlyKeysInClientMode) {
  LoadResult r = Load(Replace(kBase, "port = 2775\n", "port = 2775\nallowed_ips = [\"10.0.0.1\"]\n"));
  EXPECT_EQ(Only(r), "t.toml:6:15: smsc[0].allowed_ips: applies to mode = \"server\" only");
}

TEST(LoaderTest, ServerModeChecksAllowedIpsAndDefaultsHost) {
  std::string text = Replace(kBase, "host = \"127.0.0.1\"\n", "mode = \"server\"\n");
  text = Replace(text, "port = 2775\n", "port = 2775\nallowed_ips = [\"10.0.0.0/8\", \"::1\", \"10.0.0.300\", 5]\n");
  LoadResult r = Load(text);
  auto lines = Lines(r);
  ASSERT_EQ(lines.size(), 1u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "t.toml:6:51: smsc[0].allowed_ips[3]: expected a string, got an integer");
  r = Load(Replace(text, ", 5]", "]"));
  EXPECT_EQ(Only(r), "t.toml:6:37: smsc[0].allowed_ips[2]: '10.0.0.300' is not an IP address or CIDR block");
  r = Load(Replace(text, ", \"10.0.0.300\", 5]", "]"));
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(Lines(r));
  EXPECT_EQ(r.config.links[0].host, "0.0.0.0");
  EXPECT_EQ(r.config.links[0].mode, LinkMode::kServer);
}

TEST(LoaderTest, TlsFilesAndPairs) {
  std::string dir = MakeTempDir("cfgtls");
  WriteFile(dir, "cert.pem", "x");
  std::string base = std::string(kBase).substr(0, std::string(kBase).find("[database]"));
  std::string rest = std::string(kBase).substr(std::string(kBase).find("[database]"));
  LoadResult r = Load(base + "[smsc.tls]\nenabled = true\ncert_file = \"cert.pem\"\n" + rest, Options(), dir);
  EXPECT_EQ(Only(r), "t.toml:9:1: smsc[0].tls.key_file: cert_file needs key_file");
  r = Load(base + "[smsc.tls]\nca_file = \"missing-ca.pem\"\n" + rest, Options(), dir);
  EXPECT_EQ(Only(r), "t.toml:10:11: smsc[0].tls.ca_file: file '" + dir + "/missing-ca.pem' does not exist or is not readable");
  r = Load(base + "[smsc.tls]\nenabled = true\nverify_peer = false\n" + rest, Options(), dir);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.config.links[0].tls.verify_peer);
}

TEST(LoaderTest, ChargingBackendSpecificKeys) {
  std::string http = Replace(kBase, "backend = \"in_process\"", "backend = \"http\"");
  LoadResult r = Load(http);
  EXPECT_EQ(Only(r), "t.toml:12:1: charging[0].url: required key is missing");
  r = Load(http + "url = \"ftp://x\"\n");
  EXPECT_THAT(Only(r), HasSubstr("charging[0].url: 'ftp://x' is not an http:// or https:// URL"));
  r = Load(http + "url = \"http://127.0.0.1:8088\"\ninitial_balance_vnd = 5\n");
  EXPECT_THAT(Only(r), HasSubstr("charging[0].initial_balance_vnd: applies to backend = \"in_process\" only"));
  r = Load(std::string(kBase) + "url = \"http://127.0.0.1:8088\"\n");
  EXPECT_THAT(Only(r), HasSubstr("charging[0].url: applies to backend = \"http\" or \"carrier_billing\" only"));
  r = Load(Replace(kBase, "backend = \"in_process\"\n", ""));
  EXPECT_EQ(Only(r), "t.toml:12:1: charging[0].backend: required key is missing");
  r = Load(std::string(kBase) + "initial_balance_vnd = 60000\ncharging_mode = \"per_unit\"\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.charging[0].initial_balance_vnd, 60000);
  EXPECT_EQ(r.config.charging[0].charging_mode, std::optional<ChargingMode>(ChargingMode::kPerUnit));
}

TEST(LoaderTest, PipelineBlocklistMustExist) {
  std::string dir = MakeTempDir("cfgblock");
  LoadResult r = Load(std::string(kBase) + "[pipeline]\nblocklist_file = \"block.txt\"\n", Options(), dir);
  EXPECT_THAT(Only(r), HasSubstr("pipeline.blocklist_file: file '" + dir + "/block.txt' does not exist"));
  WriteFile(dir, "block.txt", "84912345678\n");
  r = Load(std::string(kBase) + "[pipeline]\nblocklist_file = \"block.txt\"\n", Options(), dir);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.pipeline.blocklist_file, dir + "/block.txt");
}

TEST(LoaderTest, InstanceIdShape) {
  LoadResult r = Load(std::string(kBase) + "[pipeline]\ninstance_id = \"gw 1\"\n");
  EXPECT_THAT(Only(r), HasSubstr("pipeline.instance_id: 'gw 1' must be 1..64 characters"));
}

TEST(LoaderTest, LogSection) {
  LoadResult r = Load(std::string(kBase) + "[log.components]\nlnk = \"debug\"\nstore = \"loud\"\n");
  auto lines = Lines(r);
  ASSERT_EQ(lines.size(), 2u) << ::testing::PrintToString(lines);
  EXPECT_EQ(lines[0], "t.toml:16:1: log.components.lnk: unknown key (did you mean 'link'?)");
  EXPECT_THAT(lines[1], HasSubstr("log.components.store: \"loud\" is not one of"));
  r = Load(std::string(kBase) + "[log]\nfile = \"/nonexistent-dir/x.log\"\nformat = \"json\"\n");
  EXPECT_THAT(Only(r), HasSubstr("log.file: directory '/nonexistent-dir' does not exist"));
  r = Load(std::string(kBase) + "[log]\nformat = \"json\"\n[log.components]\nstore = \"debug\"\n");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.config.log.format, LogFormat::kJson);
  EXPECT_EQ(r.config.log.components.at("store"), LogLevel::kDebug);
}

TEST(LoaderTest, ListenAddresses) {
  for (std::string ok : {"127.0.0.1:9464", "[::1]:9464", "0.0.0.0:1", "localhost:65535"}) {
    LoadResult r = Load(std::string(kBase) + "[http]\nlisten = \"" + ok + "\"\n");
    EXPECT_TRUE(r.ok()) << ok << ::testing::PrintToString(Lines(r));
  }
  for (std::string bad : {"9464", "::1:9464", "127.0.0.1:0", "127.0.0.1:65536", ":9464", "[::1]9464", "h:p"}) {
    LoadResult r = Load(std::string(kBase) + "[http]\nlisten = \"" + bad + "\"\n");
    EXPECT_THAT(Only(r), HasSubstr("http.listen:")) << bad;
  }
}

TEST(LoaderTest, FindHelpers) {
  LoadResult r = LoadConfig(SourcePath("config/donagate.example.toml"), Options());
  ASSERT_TRUE(r.ok());
  EXPECT_NE(FindCampaign(r.config, "1407", "cv"), nullptr);
  EXPECT_EQ(FindCampaign(r.config, "1408", "CV"), nullptr);
  EXPECT_EQ(FindLink(r.config, "opb-in")->operator_name, "opb");
  EXPECT_EQ(FindCharging(r.config, "opx"), nullptr);
}

}  // namespace
}  // namespace donagate::config

namespace donagate::config {
namespace {

std::string ReadSource(const std::string& relative) {
  std::ifstream in(SourcePath(relative));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The example config and docs/configuration.md must describe every key the loader accepts, so
// an operator never meets a key that is documented nowhere.
TEST(SchemaDocumentationTest, ExampleAndDocsMentionEveryKey) {
  const std::string example = ReadSource("config/donagate.example.toml");
  const std::string docs = ReadSource("docs/configuration.md");
  size_t count = 0;
  for (const auto& [table, keys] : SchemaKeys()) {
    for (const std::string& key : keys) {
      ++count;
      if (table == "log.components") {
        EXPECT_NE(example.find(" " + key), std::string::npos) << "component " << key;
        EXPECT_NE(docs.find(key), std::string::npos) << "component " << key;
        continue;
      }
      std::string header_or_key = "^[ \\t]*(#[ \\t]*)?(" + key + "[ \\t]*=|\\[+" +
                                  (table.empty() ? "" : table + "\\.") + key + "\\]+)";
      EXPECT_TRUE(std::regex_search(example, std::regex(header_or_key, std::regex::multiline)))
          << (table.empty() ? "" : table + ".") << key << " is not in config/donagate.example.toml";
      std::string in_docs = "`\\[*(" + (table.empty() ? "" : table + "\\.") + ")?" + key + "\\]*`";
      EXPECT_TRUE(std::regex_search(docs, std::regex(in_docs)))
          << (table.empty() ? "" : table + ".") << key << " is not in docs/configuration.md";
    }
  }
  EXPECT_GT(count, 100u);
}

}  // namespace
}  // namespace donagate::config
