// Reloading reply templates at run time (daemon/reply_templates.h): a reload from the
// configuration file changes the text of replies rendered afterwards; a file with errors
// changes nothing and says why.
#include "daemon/reply_templates.h"

#include <gtest/gtest.h>

#include <fstream>

#include "config/loader.h"
#include "tests/common/test_env.h"

namespace donagate::daemon {
namespace {

std::string WriteConfig(const std::string& dir, const std::string& syntax_template, bool broken) {
  std::ofstream(dir + "/smsc.pw") << "secret\n";
  std::ofstream f(dir + "/donagate.toml");
  f << "[[smsc]]\nname = \"opa-1\"\noperator = \"opa\"\nmode = \"client\"\nhost = \"127.0.0.1\"\nport = 2775\n"
       "system_id = \"x\"\npassword_file = \"smsc.pw\"\n\n"
       "[database]\nconninfo = \"host=127.0.0.1\"\n\n"
       "[[campaign]]\nname = \"covid\"\nkeyword = \"CV\"\nshortcode = \"1407\"\nunit_price_vnd = 20000\n"
       "[campaign.templates]\nsyntax = \""
    << syntax_template << "\"\n\n"
    << "[[charging]]\noperator = \"opa\"\nbackend = \"operator_billed\"\n"
    << (broken ? "bogus_key = 1\n" : "");
  return dir + "/donagate.toml";
}

TEST(ReplyTemplates, ReloadChangesTheTextOfLaterRepliesOnly) {
  std::string dir = testing::MakeTempDir("templates");
  std::string path = WriteConfig(dir, "Sai cu phap. Soan {keyword} n gui {shortcode}", false);
  config::LoadResult running = config::LoadConfig(path);
  ASSERT_TRUE(running.ok()) << running.diagnostics[0].ToString();
  const config::Campaign& campaign = running.config.campaigns.at(0);
  SetReloadedTemplates({});
  auto before = TemplatesFor(campaign);
  EXPECT_EQ(before->syntax, "Sai cu phap. Soan {keyword} n gui {shortcode}");

  WriteConfig(dir, "Cu phap: {keyword} n gui {shortcode}", false);
  std::string message;
  ASSERT_TRUE(ReloadTemplatesFromFile(path, running.config, &message)) << message;
  EXPECT_NE(message.find("1 campaign"), std::string::npos) << message;
  EXPECT_EQ(TemplatesFor(campaign)->syntax, "Cu phap: {keyword} n gui {shortcode}");
  // A reply being rendered with the old pointer keeps a valid text.
  EXPECT_EQ(before->syntax, "Sai cu phap. Soan {keyword} n gui {shortcode}");

  // A file with an error: nothing changes, the diagnostics are returned.
  WriteConfig(dir, "Khac", true);
  EXPECT_FALSE(ReloadTemplatesFromFile(path, running.config, &message));
  EXPECT_NE(message.find("bogus_key"), std::string::npos) << message;
  EXPECT_EQ(TemplatesFor(campaign)->syntax, "Cu phap: {keyword} n gui {shortcode}");

  // An unknown placeholder is a config error too: refused, nothing changes.
  WriteConfig(dir, "Sai {nope}", false);
  EXPECT_FALSE(ReloadTemplatesFromFile(path, running.config, &message));
  EXPECT_EQ(TemplatesFor(campaign)->syntax, "Cu phap: {keyword} n gui {shortcode}");
  SetReloadedTemplates({});
  EXPECT_EQ(TemplatesFor(campaign)->syntax, "Sai cu phap. Soan {keyword} n gui {shortcode}");
}

TEST(ReplyTemplates, WithoutAConfigFileReloadIsRefused) {
  config::Config c;
  std::string message;
  EXPECT_FALSE(ReloadTemplatesFromFile("", c, &message));
  EXPECT_FALSE(message.empty());
}

}  // namespace
}  // namespace donagate::daemon
