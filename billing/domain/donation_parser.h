// Parsing "CV n": the text a subscriber sends to donate n units to a campaign.
//
// Grammar, applied to UTF-8 text already decoded from the MO's data_coding:
//
//   text      := ws* keyword [ sep n ] ws* [ punct ws* ]
//   keyword   := the campaign keyword, ASCII case-insensitive ("CV", "cv", "Cv")
//   sep       := ws* [ "." | "-" | "_" ] ws*      (at most ONE of . - _; any run of whitespace)
//   n         := digit+                           (ASCII 0-9 or full-width U+FF10..U+FF19, mixed ok)
//   ws        := ASCII space, tab, CR, LF, VT, FF, U+00A0 NBSP, U+3000 ideographic space,
//                U+2000..U+200B, U+202F, U+205F, U+FEFF
//   punct     := ONE of . , ! ? ; : or their full-width forms, or U+3002 "。"
//
// Decisions the design notes left open:
//  - No n means 1 ("CV", "cv.", "CV !"). A separator with no n after it ("CV-") is a syntax error.
//  - Leading zeros are accepted ("CV 05" = 5); "CV 0" / "CV 000" are kZeroUnits.
//  - "-" is a separator, never a sign: "CV -5" is 5 units, "CV --5" a syntax error.
//  - Two trailing marks ("CV 5!!") are a syntax error; so is anything after n ("CV 5 ung ho").
//  - The keyword must be followed by a separator, a digit or the end: "CVX 5" is kWrongKeyword
//    (it may be another campaign's keyword), as is any text not starting with the keyword
//    ("Ung ho CV 5").
//  - Too many digits never overflow: any n above max_units is kTooManyUnits, checked only after
//    the whole text has parsed (so "CV 99999999999999999999" is kTooManyUnits, not an error).
//  - Invalid UTF-8 is simply text that does not match: kWrongKeyword or kSyntaxError.
//
// Pure function, no allocation; safe from any thread.
#pragma once

#include <cstdint>
#include <string_view>

namespace donagate::billing {

enum class DonationParseStatus : uint8_t {
  kOk,            // units is 1..max_units
  kEmpty,         // nothing but whitespace
  kWrongKeyword,  // does not start with this campaign's keyword
  kSyntaxError,   // starts with the keyword, the rest is not "[sep] n"
  kZeroUnits,     // n == 0
  kTooManyUnits,  // n > max_units
};

// Stable names for the store and logs: "ok", "empty", "wrong_keyword", "syntax_error",
// "zero_units", "too_many_units".
std::string_view ToString(DonationParseStatus status);

struct DonationParse {
  DonationParseStatus status = DonationParseStatus::kEmpty;
  int32_t units = 0;  // meaningful only for kOk
  bool ok() const { return status == DonationParseStatus::kOk; }
};

// `keyword` is the campaign keyword (ASCII letters); `max_units` its max_units_per_message (>= 1).
DonationParse ParseDonation(std::string_view text, std::string_view keyword, int32_t max_units);

}  // namespace donagate::billing
