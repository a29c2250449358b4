// Folding text for keyword matching: the tolerance "CV n" has (billing/domain/donation_parser.h)
// applied to whole-text keywords such as "HELP", "HUY", "STOP ALL" or "?".
//
// FoldForMatching(text) returns a canonical form in which two texts a subscriber would call
// "the same word" are equal:
//  - ASCII letters lower-cased; full-width forms U+FF01..U+FF5E become their ASCII letter,
//    digit or mark ("ＳＴＯＰ" = "stop");
//  - Vietnamese diacritics stripped: precomposed letters (U+00C0..U+00FF, Ă Đ Ĩ Ũ Ơ Ư, U+1EA0..
//    U+1EF9) become their base letter, combining marks U+0300..U+036F are dropped ("HỦY" =
//    "huy", "DỪNG" = "dung", "CÓ" = "co");
//  - separators (whitespace as in "CV n", and . - _) collapse to one ASCII space; leading and
//    trailing ones are dropped ("stop-all" = "stop  all" = "STOP ALL");
//  - one trailing mark . , ! ? ; : (or its full-width form, or "。") is dropped, unless it is
//    the whole text ("HELP!" = "help", but "?" stays "?");
//  - anything else is kept as its UTF-8 bytes; invalid UTF-8 becomes U+FFFD (never an alias).
//
// Pure, safe from any thread. In config/ (not billing/domain) because the loader uses the same
// folding to refuse aliases that collide; billing/domain/keywords.h classifies with it.
#pragma once

#include <string>
#include <string_view>

namespace donagate::config {

std::string FoldForMatching(std::string_view text);

}  // namespace donagate::config
