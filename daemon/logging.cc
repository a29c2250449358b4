#include "daemon/logging.h"

#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <map>
#include <optional>
#include <utility>
#include <vector>

#include "billing/domain/msisdn.h"

namespace donagate::daemon {
namespace {

std::atomic<bool> g_mask_msisdn{true};
std::atomic<std::chrono::steady_clock::rep> g_repeat_window{
    std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::minutes(1)).count()};

spdlog::level::level_enum ToSpdlog(config::LogLevel level) {
  switch (level) {
    case config::LogLevel::kTrace: return spdlog::level::trace;
    case config::LogLevel::kDebug: return spdlog::level::debug;
    case config::LogLevel::kInfo: return spdlog::level::info;
    case config::LogLevel::kWarn: return spdlog::level::warn;
    case config::LogLevel::kError: return spdlog::level::err;
    case config::LogLevel::kCritical: return spdlog::level::critical;
    case config::LogLevel::kOff: return spdlog::level::off;
  }
  return spdlog::level::info;
}

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace: return "trace";
    case spdlog::level::debug: return "debug";
    case spdlog::level::info: return "info";
    case spdlog::level::warn: return "warn";
    case spdlog::level::err: return "error";
    case spdlog::level::critical: return "critical";
    default: return "off";
  }
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// The safety net: masks digit runs shaped like a Vietnamese MSISDN (84 + 9 digits, or a
// national 0 + 9 digits) wherever they appear in a line.
void MaskMsisdnLike(std::string& text) {
  size_t i = 0;
  while (i < text.size()) {
    if (!IsDigit(text[i])) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < text.size() && IsDigit(text[j])) ++j;
    const size_t len = j - i;
    const bool international = len == 11 && text[i] == '8' && text[i + 1] == '4';
    const bool national = len == 10 && text[i] == '0' && text[i + 1] != '0';
    if (international || national) {
      const std::string masked = billing::MaskMsisdn(std::string_view(text).substr(i, len));
      text.replace(i, len, masked);
      j = i + masked.size();
    }
    i = j;
  }
}

bool IsKeyChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || IsDigit(c) || c == '_' || c == '.' ||
         c == '-';
}

// Parses "k=v k2=\"quoted v\" ..." into pairs; nullopt if the text is not in that shape.
std::optional<std::vector<std::pair<std::string, std::string>>> ParseKv(std::string_view text) {
  std::vector<std::pair<std::string, std::string>> pairs;
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    while (i < n && text[i] == ' ') ++i;
    if (i == n) break;
    const size_t key_start = i;
    while (i < n && IsKeyChar(text[i])) ++i;
    if (i == key_start || i == n || text[i] != '=') return std::nullopt;
    std::string key(text.substr(key_start, i - key_start));
    ++i;  // '='
    std::string value;
    if (i < n && text[i] == '"') {
      ++i;
      bool closed = false;
      while (i < n) {
        const char c = text[i++];
        if (c == '\\' && i < n) {
          const char e = text[i++];
          value.push_back(e == 'n' ? '\n' : e == 't' ? '\t' : e);
        } else if (c == '"') {
          closed = true;
          break;
        } else {
          value.push_back(c);
        }
      }
      if (!closed || (i < n && text[i] != ' ')) return std::nullopt;
    } else {
      const size_t value_start = i;
      while (i < n && text[i] != ' ') {
        if (text[i] == '"') return std::nullopt;
        ++i;
      }
      value.assign(text.substr(value_start, i - value_start));
    }
    pairs.emplace_back(std::move(key), std::move(value));
  }
  if (pairs.empty()) return std::nullopt;
  return pairs;
}

void AppendTimestamp(std::string& out, spdlog::log_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  const auto secs = std::chrono::duration_cast<std::chrono::seconds>(since_epoch);
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch - secs).count();
  const std::time_t t = static_cast<std::time_t>(secs.count());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[40];
  const size_t len = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  out.append(buf, len);
  std::snprintf(buf, sizeof buf, ".%03dZ", static_cast<int>(millis));
  out.append(buf);
}

// One process-wide sink behind every component logger; reconfigured in place under its own
// mutex, so loggers never see their sink vector change.
class DonagateSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  DonagateSink() = default;
  ~DonagateSink() override { CloseFile(); }

  bool Configure(const config::LogConfig& config, std::string* error) {
    std::lock_guard lock(mutex_);
    std::FILE* file = nullptr;
    if (!config.file.empty()) {
      file = std::fopen(config.file.c_str(), "a");
      if (file == nullptr) {
        if (error) *error = "log file " + config.file + ": " + std::strerror(errno);
        return false;
      }
    }
    CloseFile();
    file_ = file;
    path_ = config.file;
    json_ = config.format == config::LogFormat::kJson;
    mask_ = config.mask_msisdn;
    limiter_.reset();
    if (config.max_repeats_per_minute > 0) {
      limiter_ = std::make_unique<RepeatLimiter>(config.max_repeats_per_minute,
                                                 std::chrono::steady_clock::duration(g_repeat_window.load()));
    }
    return true;
  }

  void Reopen() {
    std::lock_guard lock(mutex_);
    if (path_.empty()) return;
    std::FILE* file = std::fopen(path_.c_str(), "a");
    if (file == nullptr) {
      // Keep writing to the old (possibly renamed) file rather than losing lines.
      std::string line = "ts=";
      AppendTimestamp(line, spdlog::log_clock::now());
      line += " level=error component=main event=log_reopen_failed " + Kv("file", path_) + " " +
              Kv("error", std::strerror(errno)) + "\n";
      Write(line);
      return;
    }
    CloseFile();
    file_ = file;
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    std::string payload(msg.payload.data(), msg.payload.size());
    const std::string_view component(msg.logger_name.data(), msg.logger_name.size());
    uint64_t suppressed = 0;
    if (limiter_) {
      std::string key;
      key.reserve(component.size() + payload.size() + 4);
      key.append(component).push_back('\x1f');
      key.append(LevelName(msg.level)).push_back('\x1f');
      key.append(payload);
      if (!limiter_->Allow(key, &suppressed)) return;
    }
    if (mask_) MaskMsisdnLike(payload);
    Write(json_ ? Json(msg, component, payload, suppressed) : KeyValue(msg, component, payload, suppressed));
  }

  void flush_() override {
    if (file_ != nullptr) std::fflush(file_);
  }

 private:
  static std::string KeyValue(const spdlog::details::log_msg& msg, std::string_view component,
                              const std::string& payload, uint64_t suppressed) {
    std::string line;
    line.reserve(payload.size() + 80);
    line.append("ts=");
    AppendTimestamp(line, msg.time);
    line.append(" level=").append(LevelName(msg.level));
    line.append(" component=").append(component.empty() ? std::string_view("main") : component);
    line.push_back(' ');
    if (ParseKv(payload)) {
      line.append(payload);
    } else {
      line.append(Kv("msg", payload));
    }
    if (suppressed > 0) line.append(" suppressed=").append(std::to_string(suppressed));
    line.push_back('\n');
    return line;
  }

  static std::string Json(const spdlog::details::log_msg& msg, std::string_view component,
                          const std::string& payload, uint64_t suppressed) {
    nlohmann::ordered_json j;
    std::string ts;
    AppendTimestamp(ts, msg.time);
    j["ts"] = ts;
    j["level"] = LevelName(msg.level);
    j["component"] = component.empty() ? std::string_view("main") : component;
    if (auto pairs = ParseKv(payload)) {
      for (auto& [key, value] : *pairs) {
        // The envelope's keys win; a message's own "level" etc. is kept under a prefix.
        if (key == "ts" || key == "level" || key == "component") key = "msg_" + key;
        j[key] = value;
      }
    } else {
      j["msg"] = payload;
    }
    if (suppressed > 0) j["suppressed"] = suppressed;
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line.push_back('\n');
    return line;
  }

  void Write(const std::string& line) {
    std::FILE* out = file_ != nullptr ? file_ : stderr;
    std::fwrite(line.data(), 1, line.size(), out);
    std::fflush(out);
  }

  void CloseFile() {
    if (file_ != nullptr) std::fclose(file_);
    file_ = nullptr;
  }

  std::FILE* file_ = nullptr;  // null: stderr
  std::string path_;
  bool json_ = false;
  bool mask_ = true;
  std::unique_ptr<RepeatLimiter> limiter_ =
      std::make_unique<RepeatLimiter>(10, std::chrono::minutes(1));
};

struct LogState {
  std::mutex mu;
  std::shared_ptr<DonagateSink> sink = std::make_shared<DonagateSink>();
  spdlog::level::level_enum global_level = spdlog::level::info;
  std::map<std::string, spdlog::level::level_enum, std::less<>> component_levels;
  std::map<std::string, std::shared_ptr<spdlog::logger>, std::less<>> loggers;
  bool default_installed = false;
};

LogState& State() {
  static LogState* state = new LogState();  // never destroyed: loggers may log during exit
  return *state;
}

spdlog::level::level_enum LevelFor(LogState& state, std::string_view component) {
  auto it = state.component_levels.find(component);
  return it == state.component_levels.end() ? state.global_level : it->second;
}

// Requires state.mu.
std::shared_ptr<spdlog::logger> LoggerLocked(LogState& state, std::string_view component) {
  auto it = state.loggers.find(component);
  if (it != state.loggers.end()) return it->second;
  const std::string name(component);
  // A logger of that name registered by someone else is adopted: it now writes through our
  // sink, in our format.
  auto logger = spdlog::get(name);
  if (logger) {
    logger->sinks().assign(1, state.sink);
  } else {
    logger = std::make_shared<spdlog::logger>(name, state.sink);
    spdlog::register_logger(logger);
  }
  logger->set_level(LevelFor(state, component));
  logger->flush_on(spdlog::level::warn);
  state.loggers.emplace(name, logger);
  return logger;
}

void InstallDefaultLocked(LogState& state) {
  if (state.default_installed) return;
  // spdlog::info(...) and friends (code that does not pick a component) log as "main".
  spdlog::set_default_logger(LoggerLocked(state, "main"));
  state.default_installed = true;
}

}  // namespace

bool SetupLogging(const config::LogConfig& config, std::string* error) {
  LogState& state = State();
  std::lock_guard lock(state.mu);
  if (!state.sink->Configure(config, error)) return false;
  g_mask_msisdn.store(config.mask_msisdn);
  state.global_level = ToSpdlog(config.level);
  state.component_levels.clear();
  for (const auto& [name, level] : config.components) state.component_levels[name] = ToSpdlog(level);
  for (std::string_view name : config::kLogComponents) LoggerLocked(state, name);
  for (auto& [name, logger] : state.loggers) logger->set_level(LevelFor(state, name));
  InstallDefaultLocked(state);
  return true;
}

std::shared_ptr<spdlog::logger> Logger(std::string_view component) {
  LogState& state = State();
  std::lock_guard lock(state.mu);
  InstallDefaultLocked(state);
  return LoggerLocked(state, component);
}

void ReopenLogFiles() { State().sink->Reopen(); }

void FlushLogs() { State().sink->flush(); }

void SetRepeatWindowForTesting(std::chrono::steady_clock::duration window) { g_repeat_window = window.count(); }

std::string Masked(std::string_view msisdn) {
  if (!g_mask_msisdn.load(std::memory_order_relaxed)) return std::string(msisdn);
  return billing::MaskMsisdn(msisdn);
}

std::string Quote(std::string_view value) {
  std::string out;
  out.reserve(value.size() + 2);
  out.push_back('"');
  for (char c : value) {
    switch (c) {
      case '"': out.append("\\\""); break;
      case '\\': out.append("\\\\"); break;
      case '\n': out.append("\\n"); break;
      case '\t': out.append("\\t"); break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out.push_back('?');
        } else {
          out.push_back(c);
        }
    }
  }
  out.push_back('"');
  return out;
}

std::string Kv(std::string_view key, std::string_view value) {
  bool needs_quotes = value.empty();
  for (char c : value) {
    if (c == ' ' || c == '"' || c == '=' || c == '\\' || static_cast<unsigned char>(c) < 0x20) {
      needs_quotes = true;
      break;
    }
  }
  std::string out(key);
  out.push_back('=');
  if (needs_quotes) {
    out.append(Quote(value));
  } else {
    out.append(value);
  }
  return out;
}

RepeatLimiter::RepeatLimiter(int max_per_window, std::chrono::steady_clock::duration window)
    : max_per_window_(max_per_window < 1 ? 1 : max_per_window), window_(window) {}

bool RepeatLimiter::Allow(const std::string& key, uint64_t* suppressed,
                          std::chrono::steady_clock::time_point now) {
  std::lock_guard lock(mu_);
  // Bound the memory a stream of distinct messages can take: forget entries whose window is
  // over (their pending suppressed counts are lost, which only understates a past flood).
  if (entries_.size() > 10000) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      it = now - it->second.window_start >= window_ ? entries_.erase(it) : std::next(it);
    }
  }
  auto [it, inserted] = entries_.try_emplace(key);
  Entry& entry = it->second;
  if (inserted || now - entry.window_start >= window_) {
    entry.window_start = now;
    entry.written_in_window = 0;
  }
  if (entry.written_in_window >= max_per_window_) {
    ++entry.suppressed;
    if (suppressed) *suppressed = 0;
    return false;
  }
  ++entry.written_in_window;
  if (suppressed) *suppressed = entry.suppressed;
  entry.suppressed = 0;
  return true;
}

}  // namespace donagate::daemon
