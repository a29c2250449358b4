// libFuzzer target for the configuration loader (config/loader.h): any text must produce
// either a config or diagnostics, never a crash; every diagnostic has a reason, and one with
// a position points inside the input.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "config/loader.h"

namespace {
void Check(bool ok) {
  if (!ok) std::abort();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  donagate::config::LoadOptions options;
  // Secrets resolve to fixed values: the fuzzer must not depend on the environment.
  options.getenv = [](const std::string&) -> std::optional<std::string> { return std::string("fuzz-secret"); };
  options.hostname = [] { return std::string("fuzz-host"); };
  auto result = donagate::config::LoadConfigFromString(text, "fuzz.toml", "/nonexistent", options);
  size_t lines = 1;
  for (char c : text) lines += (c == '\n');
  for (auto& d : result.diagnostics) {
    Check(!d.reason.empty());
    Check(d.line >= 0 && static_cast<size_t>(d.line) <= lines + 1);
    // Secrets are never printed (unless the input itself spells the value out).
    Check(text.find("fuzz-secret") != std::string_view::npos ||
          d.ToString().find("fuzz-secret") == std::string::npos);
  }
  return 0;
}
