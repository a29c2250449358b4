// The [[charging]] keys of backend = "carrier_billing": defaults, values, the client secret's
// sources, and file:line:col errors.
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
    if (name == "TEST_CB_SECRET") return std::string("cb-secret");
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
backend = "carrier_billing"
)";

const char* kCarrierBilling = R"(url = "https://api.opa.vn/carrier-billing/v0.4"
token_url = "https://auth.opa.vn/oauth/token"
client_id = "donagate"
client_secret_env = "TEST_CB_SECRET"
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

TEST(CarrierBillingConfig, DefaultsAndValues) {
  LoadResult r = Load(std::string(kBase) + kCarrierBilling);
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(Lines(r));
  const ChargingBackendConfig& c = r.config.charging[0];
  EXPECT_EQ(c.backend, ChargingBackendKind::kCarrierBilling);
  EXPECT_EQ(ToString(c.backend), "carrier_billing");
  EXPECT_EQ(c.url, "https://api.opa.vn/carrier-billing/v0.4");
  EXPECT_EQ(c.token_url, "https://auth.opa.vn/oauth/token");
  EXPECT_EQ(c.client_id, "donagate");
  EXPECT_EQ(c.client_secret.Reveal(), "cb-secret");
  EXPECT_EQ(c.client_secret.source(), "env:TEST_CB_SECRET");
  EXPECT_FALSE(c.two_step);
  EXPECT_TRUE(c.tls_verify);
  EXPECT_EQ(c.payment_description, "donation");
  EXPECT_EQ(c.token_refresh_margin_s, 30);

  r = Load(std::string(kBase) + kCarrierBilling + R"(two_step = true
scope = "carrier-billing:payments:create"
merchant_identifier = "quy-1"
payment_description = "Ung ho"
token_refresh_margin_s = 0
)");
  ASSERT_TRUE(r.ok()) << ::testing::PrintToString(Lines(r));
  EXPECT_TRUE(r.config.charging[0].two_step);
  EXPECT_EQ(r.config.charging[0].scope, "carrier-billing:payments:create");
  EXPECT_EQ(r.config.charging[0].merchant_identifier, "quy-1");
  EXPECT_EQ(r.config.charging[0].payment_description, "Ung ho");
  EXPECT_EQ(r.config.charging[0].token_refresh_margin_s, 0);
}

TEST(CarrierBillingConfig, ErrorsPointAtTheKey) {
  EXPECT_EQ(Only(Load(std::string(kBase) + R"(url = "https://a/cb"
client_id = "x"
client_secret_env = "TEST_CB_SECRET"
)")), "t.toml:12:1: charging[0].token_url: required key is missing");
  EXPECT_EQ(Only(Load(std::string(kBase) + R"(url = "https://a/cb"
token_url = "ftp://auth"
client_id = "x"
client_secret_env = "TEST_CB_SECRET"
)")), "t.toml:16:13: charging[0].token_url: 'ftp://auth' is not an http:// or https:// URL");
  EXPECT_THAT(Only(Load(std::string(kBase) + R"(url = "https://a/cb"
token_url = "https://auth"
client_id = "x"
)")), HasSubstr("missing client_secret source: set client_secret_env or client_secret_file"));
  EXPECT_THAT(Only(Load(std::string(kBase) + kCarrierBilling + "client_secret = \"inline\"\n")),
              HasSubstr("charging[0].client_secret: inline secrets are not allowed"));
  EXPECT_THAT(Only(Load(std::string(kBase) + kCarrierBilling + "token_refresh_margin_s = 7200\n")),
              HasSubstr("charging[0].token_refresh_margin_s"));
  EXPECT_THAT(Only(Load(std::string(kBase) + kCarrierBilling + "payment_description = \"\"\n")),
              HasSubstr("charging[0].payment_description: needs 1..100 characters"));
  EXPECT_THAT(Only(Load(std::string(kBase) + kCarrierBilling + "peers = [\"ocs:3868\"]\n")),
              HasSubstr("charging[0].peers: applies to backend = \"diameter\" only"));
  // The url of the http backend is required here too.
  EXPECT_EQ(Only(Load(std::string(kBase) + R"(token_url = "https://auth"
client_id = "x"
client_secret_env = "TEST_CB_SECRET"
)")), "t.toml:12:1: charging[0].url: required key is missing");
}

TEST(CarrierBillingConfig, CarrierBillingKeysOnOtherBackendsAreRefused) {
  std::string text = std::string(kBase);
  text.replace(text.find("\"carrier_billing\""), 17, "\"in_process\"");
  EXPECT_EQ(Only(Load(text + "token_url = \"https://a\"\n")),
            "t.toml:15:13: charging[0].token_url: applies to backend = \"carrier_billing\" only");
}

}  // namespace
}  // namespace donagate::config
