// Dashboards and alerts are only as good as the names they query: a renamed metric turns a
// panel blank and an alert silent without any error. This test extracts every donagate_* name
// from deploy/grafana/donagate-dashboard.json (panel queries and template variables) and
// deploy/prometheus/alerts.yml, and checks each against what the daemon registers (Metrics and
// LinkMetrics on one registry, every family materialised). It also checks the converse: every
// exported family is shown on the dashboard, so nothing the daemon measures is invisible.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <prometheus/registry.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>

#include "daemon/link_metrics.h"
#include "daemon/metrics.h"
#include "tests/common/test_env.h"

namespace donagate::daemon {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::set<std::string> NamesIn(const std::string& text) {
  static const std::regex kName(R"(\bdonagate_[a-z0-9_]*[a-z0-9])");
  std::set<std::string> names;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), kName); it != std::sregex_iterator(); ++it) {
    names.insert(it->str());
  }
  return names;
}

// Every PromQL string in the dashboard: targets[].expr anywhere, and query variables.
void CollectQueries(const nlohmann::json& node, std::string* out) {
  if (node.is_object()) {
    for (const auto& [key, value] : node.items()) {
      if ((key == "expr" || key == "query" || key == "definition") && value.is_string()) {
        out->append(value.get<std::string>()).push_back('\n');
      } else {
        CollectQueries(value, out);
      }
    }
  } else if (node.is_array()) {
    for (const auto& item : node) CollectQueries(item, out);
  }
}

// name → type, for every family the daemon can export.
std::map<std::string, prometheus::MetricType> ExportedFamilies() {
  static prometheus::Registry registry;
  static Metrics metrics(registry, "test");
  static LinkMetrics link(registry, "opa");
  // Families keyed by configured names exist only once used.
  metrics.ForLink("opa");
  metrics.ForCampaign("flood", "opa");
  metrics.ForBackend("opa");
  metrics.ForOperator("opa");
  metrics.DbConnected(billing::DbServer{"127.0.0.1", "5432", false}, false);
  link.BindFailed("ESME_RINVPASWD");
  link.Pdu(PduDirection::kIn, "deliver_sm", "ESME_ROK");
  std::map<std::string, prometheus::MetricType> families;
  for (const auto& family : registry.Collect()) families[family.name] = family.type;
  return families;
}

// Strips the series suffixes Prometheus derives from a histogram family.
std::string FamilyOf(const std::string& name, const std::map<std::string, prometheus::MetricType>& families) {
  for (const std::string suffix : {"_bucket", "_sum", "_count"}) {
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
      const std::string base = name.substr(0, name.size() - suffix.size());
      auto it = families.find(base);
      if (it != families.end() && it->second == prometheus::MetricType::Histogram) return base;
    }
  }
  return name;
}

std::set<std::string> Unknown(const std::set<std::string>& used,
                              const std::map<std::string, prometheus::MetricType>& families) {
  std::set<std::string> unknown;
  for (const auto& name : used) {
    if (!families.count(FamilyOf(name, families))) unknown.insert(name);
  }
  return unknown;
}

std::string Join(const std::set<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += n + " ";
  return out;
}

TEST(MetricNames, DaemonExportsEveryMetricTheRegistryShould) {
  const auto families = ExportedFamilies();
  for (const auto& name : Metrics::Names()) EXPECT_TRUE(families.count(name)) << name;
  for (const char* name : {"donagate_link_up", "donagate_link_binds_total", "donagate_link_bind_failures_total",
                           "donagate_link_reconnects_total", "donagate_link_pdus_total",
                           "donagate_link_window_in_use", "donagate_link_throttled_total"}) {
    EXPECT_TRUE(families.count(name)) << name;
  }
}

TEST(MetricNames, EveryNameInTheAlertRulesIsExported) {
  const auto families = ExportedFamilies();
  const auto used = NamesIn(ReadFile(testing::SourcePath("deploy/prometheus/alerts.yml")));
  EXPECT_GE(used.size(), 10u) << "the extraction found the rules' metrics";
  EXPECT_EQ(Unknown(used, families), std::set<std::string>{}) << "alerts.yml queries metrics nobody exports";
}

TEST(MetricNames, EveryNameOnTheDashboardIsExportedAndEveryExportIsShown) {
  const auto families = ExportedFamilies();
  const auto dashboard = nlohmann::json::parse(ReadFile(testing::SourcePath("deploy/grafana/donagate-dashboard.json")));
  std::string queries;
  CollectQueries(dashboard, &queries);
  const auto used = NamesIn(queries);
  EXPECT_EQ(Unknown(used, families), std::set<std::string>{}) << "the dashboard queries metrics nobody exports";

  std::set<std::string> shown;
  for (const auto& name : used) shown.insert(FamilyOf(name, families));
  std::set<std::string> hidden;
  for (const auto& [name, type] : families) {
    if (!shown.count(name)) hidden.insert(name);
  }
  EXPECT_EQ(hidden, std::set<std::string>{}) << "exported but on no panel: " << Join(hidden);
}

TEST(MetricNames, TheCheckCatchesARenamedMetric) {
  const auto families = ExportedFamilies();
  const auto used = NamesIn(
      "sum(rate(donagate_mo_recieved_total[5m])) / histogram_quantile(0.99, "
      "rate(donagate_ack_latency_seconds_bucket[5m])) + donagate_link_up_bucket");
  EXPECT_EQ(Unknown(used, families),
            (std::set<std::string>{"donagate_link_up_bucket", "donagate_mo_recieved_total"}))
      << "a typo and a _bucket suffix on a non-histogram are both reported";
}

}  // namespace
}  // namespace donagate::daemon
