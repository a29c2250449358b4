#include "daemon/reply_templates.h"

#include <mutex>

#include "config/loader.h"

namespace donagate::daemon {
namespace {

std::mutex g_mu;
std::map<std::string, std::shared_ptr<const config::ReplyTemplates>> g_reloaded;

}  // namespace

std::shared_ptr<const config::ReplyTemplates> TemplatesFor(const config::Campaign& campaign) {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    auto it = g_reloaded.find(campaign.name);
    if (it != g_reloaded.end()) return it->second;
  }
  // Not reloaded: the campaign's own templates, which live as long as the running config.
  return std::shared_ptr<const config::ReplyTemplates>(std::shared_ptr<void>(), &campaign.templates);
}

void SetReloadedTemplates(std::map<std::string, config::ReplyTemplates> templates) {
  std::map<std::string, std::shared_ptr<const config::ReplyTemplates>> next;
  for (auto& [name, t] : templates) next[name] = std::make_shared<const config::ReplyTemplates>(std::move(t));
  std::lock_guard<std::mutex> lock(g_mu);
  g_reloaded.swap(next);
}

bool ReloadTemplatesFromFile(const std::string& config_path, const config::Config& running, std::string* message) {
  if (config_path.empty()) {
    *message = "the daemon was not started from a configuration file";
    return false;
  }
  config::LoadResult loaded = config::LoadConfig(config_path);
  if (!loaded.ok()) {
    std::string text = "configuration has errors; templates unchanged:";
    for (auto& d : loaded.diagnostics) text += "\n" + d.ToString();
    *message = text;
    return false;
  }
  std::map<std::string, config::ReplyTemplates> templates;
  std::string skipped;
  for (const config::Campaign& c : loaded.config.campaigns) {
    bool running_has = false;
    for (const config::Campaign& r : running.campaigns) running_has |= (r.name == c.name);
    if (running_has) {
      templates[c.name] = c.templates;
    } else {
      skipped += (skipped.empty() ? "" : ", ") + c.name;
    }
  }
  const size_t n = templates.size();
  SetReloadedTemplates(std::move(templates));
  *message = "templates reloaded for " + std::to_string(n) + " campaign(s)";
  if (!skipped.empty()) *message += "; new campaigns need a restart: " + skipped;
  return true;
}

}  // namespace donagate::daemon
