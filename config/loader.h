// Loading and validating the TOML configuration.
//
// LoadConfig reads one file and reports EVERY problem it finds, each as
//   file:line:column: key: reason
// e.g. "donagate.toml:12:9: smsc[1].port: 70000 is outside 1..65535".
// Keys are dotted paths; array indexes are 0-based, as in toml++ paths ("smsc[0]" is the first
// [[smsc]] entry). A missing required key points at the header of the table that lacks it.
// Unknown keys, wrong types, out-of-range values, cross-field contradictions, secrets that
// cannot be resolved and referenced files that cannot be read are all errors; there are no
// warnings. Secret values never appear in a diagnostic.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "config/config.h"

namespace donagate::config {

struct Diagnostic {
  std::string file;   // as given to LoadConfig
  int line = 0;       // 1-based; 0 when the problem has no position (e.g. unreadable file)
  int column = 0;     // 1-based
  std::string key;    // dotted path, e.g. "smsc[1].port"; empty for file-level problems
  std::string reason;

  // "file:line:column: key: reason" (line/column/key omitted when unknown).
  std::string ToString() const;
};

struct LoadResult {
  Config config;                         // meaningful only when ok()
  std::vector<Diagnostic> diagnostics;   // in file order
  bool ok() const { return diagnostics.empty(); }
};

struct LoadOptions {
  // Environment lookup for *_env secrets; default: std::getenv. Returns nullopt when unset.
  std::function<std::optional<std::string>(const std::string&)> getenv;
  // Host name used when pipeline.instance_id is not set; default: gethostname().
  std::function<std::string()> hostname;
};

// Reads and validates `path`. Relative file paths inside the config (password_file, ca_file,
// blocklist_file, ...) are resolved against the directory of `path`.
LoadResult LoadConfig(const std::string& path, const LoadOptions& options = {});

// Same, from text already in memory; `source_name` is what diagnostics print as the file and
// `base_dir` anchors relative paths.
LoadResult LoadConfigFromString(std::string_view toml_text, const std::string& source_name,
                                const std::string& base_dir, const LoadOptions& options = {});

// Checks one reply template: placeholders must be in kTemplatePlaceholders, braces balanced
// ("{{" / "}}" are literal braces). Returns an empty string when valid, else the reason.
std::string ValidateTemplate(std::string_view text);

// Every key the loader accepts, as (table, keys) pairs: "" is the root table, "smsc",
// "smsc.tls", "database", "campaign", "campaign.templates", "charging", "pipeline", "http",
// "admin", "log", "log.components". For documentation checks and tooling.
std::vector<std::pair<std::string, std::vector<std::string>>> SchemaKeys();

}  // namespace donagate::config
