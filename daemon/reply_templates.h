// Reply templates in force at run time. The configuration loaded at start is the default; an
// admin "reload templates" re-reads the configuration file and replaces the templates of the
// campaigns it still names, without a restart. Campaigns themselves (names, keywords, prices)
// are not reloaded: changing what is charged needs a restart.
//
// Thread-safe: the pipeline (io threads) and the charging worker read while the admin thread
// replaces. Replies already in the outbox keep the text they were rendered with.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "config/config.h"

namespace donagate::daemon {

// The templates to render for `campaign`: the reloaded ones when a reload supplied them,
// else the campaign's own. The returned pointer stays valid across later reloads.
std::shared_ptr<const config::ReplyTemplates> TemplatesFor(const config::Campaign& campaign);

// Replaces the reloaded templates (campaign name -> templates).
void SetReloadedTemplates(std::map<std::string, config::ReplyTemplates> templates);

// Re-reads `config_path` with the config loader (every template validated there) and installs
// the templates of the campaigns that `running` also has. Returns false with `message` set to
// the diagnostics (nothing changes) when the file does not load; else true with a summary.
bool ReloadTemplatesFromFile(const std::string& config_path, const config::Config& running, std::string* message);

}  // namespace donagate::daemon
