// Rendering helpers of the console. Every text that comes from the database or the request is
// attacker-controlled (an MO's text, a reason, a file name): it reaches a page only through
// Esc(). Amounts read the Vietnamese way ("1.234.567 đ"); times are shown in Asia/Ho_Chi_Minh.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace donagate::console {

// & < > " ' escaped, so the result is inert in element content and in quoted attributes.
std::string Esc(std::string_view text);
// Text for a <script type="application/json"> block: '<', '>', '&' and U+2028/9 as \u escapes,
// so "</script>" in a value cannot end the block.
std::string JsonForScript(std::string_view json);

// 1234567 -> "1.234.567 đ" (negative: "-1.234.567 đ").
std::string FormatVnd(int64_t vnd);
// 1234567 -> "1.234.567".
std::string FormatCount(int64_t n);

// "84912345678" -> "84912***678"; shorter or non-digit input keeps its first 2 and last 2.
std::string MaskMsisdn(std::string_view msisdn);

// Percent-decoding of a query string or an application/x-www-form-urlencoded body ('+' is a
// space). Repeated keys keep the last value. Keys and values are raw bytes: escape on output.
std::map<std::string, std::string> ParseForm(std::string_view body);
std::string UrlEncode(std::string_view text);

enum class Lang { kVi, kEn };
// UI text in the chosen language; `key` is the English text itself (so a missing translation
// shows English, never an empty label).
const std::string& T(Lang lang, const std::string& key);

}  // namespace donagate::console
