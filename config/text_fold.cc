#include "config/text_fold.h"

#include <cstdint>

namespace donagate::config {
namespace {

// Decodes one code point at s[*i] (advancing *i); 0xFFFD for invalid UTF-8.
char32_t NextCodePoint(std::string_view s, size_t* i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(*i);
  size_t len = 0;
  char32_t cp = 0;
  if (c < 0x80) {
    ++*i;
    return c;
  } else if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    ++*i;
    return 0xFFFD;
  }
  if (*i + len > s.size()) {
    *i = s.size();
    return 0xFFFD;
  }
  for (size_t k = 1; k < len; ++k) {
    if ((b(*i + k) & 0xC0) != 0x80) {
      ++*i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (b(*i + k) & 0x3F);
  }
  *i += len;
  return cp;
}

void AppendUtf8(std::string* out, char32_t cp) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

bool IsSeparator(char32_t cp) {
  return cp == ' ' || (cp >= '\t' && cp <= '\r') || cp == 0xA0 || cp == 0x3000 ||
         (cp >= 0x2000 && cp <= 0x200B) || cp == 0x202F || cp == 0x205F || cp == 0xFEFF ||
         cp == '.' || cp == '-' || cp == '_';
}

// The base letter of a Vietnamese (or other Latin-1) accented letter, lower case; 0 if none.
char BaseLetter(char32_t cp) {
  if (cp >= 0xC0 && cp <= 0xFF) {
    // U+00C0..U+00FF by offset; '#' = not a letter with a Latin base (Æ × Þ ß æ ÷ þ).
    static constexpr std::string_view kLatin1 =
        "aaaaaa#ceeeeiiiidnooooo#ouuuuy##"
        "aaaaaa#ceeeeiiiidnooooo#ouuuuy#y";
    const char c = kLatin1[cp - 0xC0];
    return c == '#' ? 0 : c;
  }
  switch (cp) {
    case 0x102: case 0x103: return 'a';  // Ă ă
    case 0x110: case 0x111: return 'd';  // Đ đ
    case 0x128: case 0x129: return 'i';  // Ĩ ĩ
    case 0x168: case 0x169: return 'u';  // Ũ ũ
    case 0x1A0: case 0x1A1: return 'o';  // Ơ ơ
    case 0x1AF: case 0x1B0: return 'u';  // Ư ư
    default: break;
  }
  if (cp >= 0x1EA0 && cp <= 0x1EB7) return 'a';
  if (cp >= 0x1EB8 && cp <= 0x1EC7) return 'e';
  if (cp >= 0x1EC8 && cp <= 0x1ECB) return 'i';
  if (cp >= 0x1ECC && cp <= 0x1EE3) return 'o';
  if (cp >= 0x1EE4 && cp <= 0x1EF1) return 'u';
  if (cp >= 0x1EF2 && cp <= 0x1EF9) return 'y';
  return 0;
}

bool IsTrailingMark(char32_t cp) {
  return cp == '.' || cp == ',' || cp == '!' || cp == '?' || cp == ';' || cp == ':';
}

}  // namespace

std::string FoldForMatching(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  bool pending_separator = false;
  size_t i = 0;
  // A trailing mark is only known to be trailing at the end; '.' is both a separator and a
  // mark, which is harmless (a trailing separator is dropped anyway).
  size_t last_mark_at = std::string::npos;  // position in `out` of a mark just appended
  while (i < text.size()) {
    char32_t cp = NextCodePoint(text, &i);
    if (cp >= 0xFF01 && cp <= 0xFF5E) cp -= 0xFEE0;  // full-width ASCII
    if (cp == 0x3002) cp = '.';                       // ideographic full stop
    if (cp >= 0x300 && cp <= 0x36F) continue;         // combining marks (decomposed diacritics)
    if (IsSeparator(cp)) {
      if (!out.empty()) pending_separator = true;
      if (cp == '.' && !out.empty()) last_mark_at = std::string::npos;
      continue;
    }
    if (pending_separator) {
      out.push_back(' ');
      pending_separator = false;
    }
    if (cp >= 'A' && cp <= 'Z') cp += 'a' - 'A';
    if (char base = BaseLetter(cp); base != 0) cp = static_cast<unsigned char>(base);
    last_mark_at = IsTrailingMark(cp) ? out.size() : std::string::npos;
    AppendUtf8(&out, cp);
  }
  if (last_mark_at != std::string::npos && last_mark_at > 0) {
    out.resize(last_mark_at);
    while (!out.empty() && out.back() == ' ') out.pop_back();
  }
  return out;
}

}  // namespace donagate::config
