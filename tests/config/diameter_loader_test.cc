// The [[charging]] keys of backend = "diameter": defaults, values, and file:line:col errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "config/loader.h"

namespace donagate::config {
namespace {

using ::testing::HasSubstr;

LoadOptions Options() {
  LoadOptions o;
  o.getenv = [](const std::string& name) -> std::optional<std::string> {
    if (name == "TEST_SMSC_PASSWORD") return std::string("pw");
    return std::nullopt;
  };
  o.hostname = [] { return std::string("testhost"); };
  return o;
}

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
backend = "diameter"
)";

const char* kDiameter = R"(peers = ["ocs1.opa.vn:3868", "10.0.0.2"]
origin_host = "donagate.example.vn"
origin_realm = "example.vn"
destination_realm = "opa.vn"
)";

LoadResult Load(const std::string& text) { return LoadConfigFromString(text, "t.toml", "/nonexistent", Options()); }

std::vector<std::string> Lines(const LoadResult& r) {
  std::vector<std::string> out;
  for (const auto& d : r.diagnostics) out.push_back(d.ToString());
  return out;
}

std::string Only(const LoadResult& r) {
  EXPECT_EQ(r.diagnostics.size(), 1u) << ::testing::PrintToString(Lines(r));
  return r.diagnostics.empty() ? "" : r.diagnostics[0].ToString();
}

TEST(DiameterConfig, DefaultsAndValues) {
  LoadResult r = Load(std::string(kBase) + kDiameter);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(Lines(r));
  const ChargingBackendConfig& c = r.config.charging[0];
  EXPECT_EQ(c.backend, ChargingBackendKind::kDiameter);
  EXPECT_EQ(c.peers, (std::vector<std::string>{"ocs1.opa.vn:3868", "10.0.0.2"}));
  EXPECT_EQ(c.origin_host, "donagate.example.vn");
  EXPECT_EQ(c.service_context_id, "32274@3gpp.org");
  EXPECT_EQ(c.idempotency_avp_code, 411u);
  EXPECT_EQ(c.watchdog_interval_ms, 30000);
  EXPECT_EQ(c.failure_handling, 2u);

  r = Load(std::string(kBase) + kDiameter + R"(service_identifier = 7
rating_group = 100
campaign_rating_groups = { "Vi mien Trung" = 200 }
failure_handling = "TERMINATE"
idempotency_avp_code = 1
watchdog_interval_ms = 6000
)");
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(Lines(r));
  EXPECT_EQ(r.config.charging[0].campaign_rating_groups.at("Vi mien Trung"), 200u);
  EXPECT_EQ(r.config.charging[0].failure_handling, 0u);
  EXPECT_EQ(r.config.charging[0].idempotency_avp_code, 1u);
}

TEST(DiameterConfig, ErrorsSayWhereAndWhy) {
  EXPECT_EQ(Only(Load(std::string(kBase) + R"(origin_host = "a"
origin_realm = "b"
destination_realm = "c"
)")), "t.toml:12:1: charging[0].peers: required key is missing");
  EXPECT_THAT(Only(Load(std::string(kBase) + kDiameter + "origin_host = \"bad host\"\n")), HasSubstr("origin_host"));
  std::string text = std::string(kBase) + R"(peers = ["ocs:99999"]
origin_host = "a"
origin_realm = "b"
destination_realm = "c"
)";
  EXPECT_THAT(Only(Load(text)), HasSubstr("t.toml:15:9: charging[0].peers: 'ocs:99999' is not host[:port]"));
  EXPECT_THAT(Only(Load(std::string(kBase) + kDiameter + "failure_handling = \"RETRY\"\n")),
              HasSubstr("charging[0].failure_handling: \"RETRY\" is not one of"));
  EXPECT_THAT(Only(Load(std::string(kBase) + kDiameter + "campaign_rating_groups = { x = -1 }\n")),
              HasSubstr("charging[0].campaign_rating_groups.x: expected an integer 1..4294967295"));
  EXPECT_THAT(Only(Load(std::string(kBase) + kDiameter + "url = \"http://x\"\n")),
              HasSubstr("charging[0].url: applies to backend = \"http\" or \"carrier_billing\" only"));
}

TEST(DiameterConfig, TlsKeys) {
  LoadResult r = Load(std::string(kBase) + kDiameter);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r.config.charging[0].tls);
  r = Load(std::string(kBase) + kDiameter + R"(tls = true
ca_file = "/etc/passwd"
tls_cert_file = "/etc/passwd"
tls_key_file = "/etc/hostname"
)");
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(Lines(r));
  EXPECT_TRUE(r.config.charging[0].tls);
  EXPECT_TRUE(r.config.charging[0].tls_verify);
  EXPECT_EQ(r.config.charging[0].tls_cert_file, "/etc/passwd");
  EXPECT_EQ(r.config.charging[0].tls_key_file, "/etc/hostname");
  // kBase + kDiameter end at line 18.
  EXPECT_EQ(Only(Load(std::string(kBase) + kDiameter + "tls_cert_file = \"/etc/passwd\"\ntls_key_file = \"/etc/passwd\"\n")),
            "t.toml:19:17: charging[0].tls_cert_file: needs tls = true");
  EXPECT_EQ(Only(Load(std::string(kBase) + kDiameter + "tls = true\ntls_key_file = \"/etc/passwd\"\n")),
            "t.toml:20:16: charging[0].tls_key_file: tls_cert_file and tls_key_file go together (a client certificate and its key)");
  EXPECT_THAT(Only(Load(std::string(kBase) + kDiameter + "tls = true\ntls_cert_file = \"/nonexistent/c.pem\"\ntls_key_file = \"/etc/passwd\"\n")),
              HasSubstr("charging[0].tls_cert_file: file '/nonexistent/c.pem' does not exist or is not readable"));
  std::string text = std::string(kBase);
  text.replace(text.find("\"diameter\""), 10, "\"in_process\"");
  EXPECT_THAT(Only(Load(text + "tls = true\n")), HasSubstr("charging[0].tls: applies to backend = \"diameter\" only"));
}

TEST(DiameterConfig, DiameterKeysOnOtherBackendsAreRefused) {
  std::string text = std::string(kBase);
  text.replace(text.find("\"diameter\""), 10, "\"in_process\"");
  EXPECT_EQ(Only(Load(text + "origin_host = \"a\"\n")),
            "t.toml:15:15: charging[0].origin_host: applies to backend = \"diameter\" only");
}

}  // namespace
}  // namespace donagate::config
