#include "protocol/text_codec.h"

#include <algorithm>
#include <array>

#include "protocol/udh.h"

namespace donagate::smpp {
namespace {

constexpr char32_t kReplacement = 0xFFFD;
constexpr uint8_t kGsmEscape = 0x1B;
constexpr uint8_t kGsmCarriageReturn = 0x0D;

// 3GPP 23.038 §6.2.1: GSM 7-bit default alphabet, indexed by septet.
constexpr std::array<char16_t, 128> kGsmToUnicode = {
    u'@',    u'\u00A3', u'$',     u'\u00A5', u'\u00E8', u'\u00E9', u'\u00F9', u'\u00EC',
    u'\u00F2', u'\u00C7', u'\n',  u'\u00D8', u'\u00F8', u'\r',     u'\u00C5', u'\u00E5',
    u'\u0394', u'_',    u'\u03A6', u'\u0393', u'\u039B', u'\u03A9', u'\u03A0', u'\u03A8',
    u'\u03A3', u'\u0398', u'\u039E', u'\u00A0' /* ESC, never emitted */, u'\u00C6', u'\u00E6',
    u'\u00DF', u'\u00C9',
    u' ',    u'!',      u'"',     u'#',      u'\u00A4', u'%',      u'&',      u'\'',
    u'(',    u')',      u'*',     u'+',      u',',      u'-',      u'.',      u'/',
    u'0',    u'1',      u'2',     u'3',      u'4',      u'5',      u'6',      u'7',
    u'8',    u'9',      u':',     u';',      u'<',      u'=',      u'>',      u'?',
    u'\u00A1', u'A',    u'B',     u'C',      u'D',      u'E',      u'F',      u'G',
    u'H',    u'I',      u'J',     u'K',      u'L',      u'M',      u'N',      u'O',
    u'P',    u'Q',      u'R',     u'S',      u'T',      u'U',      u'V',      u'W',
    u'X',    u'Y',      u'Z',     u'\u00C4', u'\u00D6', u'\u00D1', u'\u00DC', u'\u00A7',
    u'\u00BF', u'a',    u'b',     u'c',      u'd',      u'e',      u'f',      u'g',
    u'h',    u'i',      u'j',     u'k',      u'l',      u'm',      u'n',      u'o',
    u'p',    u'q',      u'r',     u's',      u't',      u'u',      u'v',      u'w',
    u'x',    u'y',      u'z',     u'\u00E4', u'\u00F6', u'\u00F1', u'\u00FC', u'\u00E0',
};

// 23.038 §6.2.1.1: extension table reached through ESC. 0 = not defined.
constexpr char16_t GsmExtensionToUnicode(uint8_t code) {
  switch (code) {
    case 0x0A: return u'\f';
    case 0x14: return u'^';
    case 0x28: return u'{';
    case 0x29: return u'}';
    case 0x2F: return u'\\';
    case 0x3C: return u'[';
    case 0x3D: return u'~';
    case 0x3E: return u']';
    case 0x40: return u'|';
    case 0x65: return u'\u20AC';
    default: return 0;
  }
}

// Unicode -> GSM code: septet, or kExtensionFlag | extension code, or kNoGsm.
constexpr uint16_t kNoGsm = 0xFFFF;
constexpr uint16_t kExtensionFlag = 0x100;
constexpr char32_t kGsmReverseLimit = 0x400;  // every table character but the euro is below this

struct GsmReverseTable {
  std::array<uint16_t, kGsmReverseLimit> code{};
  constexpr GsmReverseTable() {
    code.fill(kNoGsm);
    for (uint16_t septet = 0; septet < 128; ++septet) {
      if (septet == kGsmEscape) continue;
      code[kGsmToUnicode[septet]] = septet;
    }
    for (uint16_t ext = 0; ext < 128; ++ext) {
      char16_t c = GsmExtensionToUnicode(static_cast<uint8_t>(ext));
      if (c != 0 && c < kGsmReverseLimit) code[c] = kExtensionFlag | ext;
    }
  }
};
constexpr GsmReverseTable kUnicodeToGsm;

uint16_t GsmCodeFor(char32_t cp) {
  if (cp < kGsmReverseLimit) return kUnicodeToGsm.code[cp];
  if (cp == 0x20AC) return kExtensionFlag | 0x65;
  return kNoGsm;
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

// UTF-8 of every default-alphabet character, so that decoding a septet is one short append.
struct Utf8Char {
  char bytes[3] = {};
  uint8_t length = 0;
};
struct GsmUtf8Table {
  std::array<Utf8Char, 128> septet{};
  constexpr GsmUtf8Table() {
    for (std::size_t i = 0; i < 128; ++i) {
      char16_t c = kGsmToUnicode[i];
      Utf8Char& u = septet[i];
      if (c < 0x80) {
        u.bytes[0] = static_cast<char>(c);
        u.length = 1;
      } else if (c < 0x800) {
        u.bytes[0] = static_cast<char>(0xC0 | (c >> 6));
        u.bytes[1] = static_cast<char>(0x80 | (c & 0x3F));
        u.length = 2;
      } else {
        u.bytes[0] = static_cast<char>(0xE0 | (c >> 12));
        u.bytes[1] = static_cast<char>(0x80 | ((c >> 6) & 0x3F));
        u.bytes[2] = static_cast<char>(0x80 | (c & 0x3F));
        u.length = 3;
      }
    }
  }
};
constexpr GsmUtf8Table kGsmUtf8;

// Reads one code point from strict UTF-8 (no overlongs, no surrogates, <= U+10FFFF). A malformed
// sequence consumes its maximal valid prefix (at least one byte) and yields U+FFFD, *bad = true.
char32_t NextCodePoint(std::string_view s, std::size_t* pos, bool* bad) {
  const auto byte = [&](std::size_t i) { return static_cast<uint8_t>(s[i]); };
  std::size_t i = *pos;
  uint8_t b0 = byte(i);
  *bad = false;
  if (b0 < 0x80) {
    *pos = i + 1;
    return b0;
  }
  int length;
  uint8_t lo = 0x80, hi = 0xBF;
  char32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    length = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    length = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    length = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    *pos = i + 1;
    *bad = true;
    return kReplacement;
  }
  ++i;
  for (int k = 1; k < length; ++k, ++i) {
    if (i >= s.size() || byte(i) < lo || byte(i) > hi) {
      *pos = i;
      *bad = true;
      return kReplacement;
    }
    cp = (cp << 6) | (byte(i) & 0x3F);
    lo = 0x80;
    hi = 0xBF;
  }
  *pos = i;
  return cp;
}

// Collects the parts of a (possibly concatenated) message so that GSM escapes and surrogate
// pairs straddling a part boundary decode as one character.
class TextAccumulator {
 public:
  void AddGsmSeptets(std::string_view septets) {
    FlushUtf16();
    gsm_.append(septets);
  }
  void AddUtf16(const std::u16string& units) {
    FlushGsm();
    utf16_.append(units);
  }
  void AddSingleByte(std::string_view bytes, TextAlphabet alphabet) {
    Flush();
    bytes = StripTrailingNuls(bytes);
    for (char c : bytes) {
      auto b = static_cast<uint8_t>(c);
      if (b == 0 || (alphabet == TextAlphabet::kIa5 && b >= 0x80)) {
        Replace();
      } else {
        AppendUtf8(&out_, b);
      }
    }
  }
  void Replace() {
    AppendUtf8(&out_, kReplacement);
    ++replacements_;
  }
  void CountReplacement() { ++replacements_; }

  void Flush() {
    FlushGsm();
    FlushUtf16();
  }
  std::string TakeText() { return std::move(out_); }
  std::size_t replacements() const { return replacements_; }

  static std::string_view StripTrailingNuls(std::string_view bytes) {
    while (!bytes.empty() && bytes.back() == '\0') bytes.remove_suffix(1);
    return bytes;
  }

 private:
  void FlushGsm() {
    out_.reserve(out_.size() + gsm_.size() * 2);  // most characters take 1 or 2 octets
    for (std::size_t i = 0; i < gsm_.size(); ++i) {
      auto septet = static_cast<uint8_t>(gsm_[i]);
      if (septet >= 0x80) {
        Replace();
      } else if (septet != kGsmEscape) {
        const Utf8Char& c = kGsmUtf8.septet[septet];
        out_.append(c.bytes, c.length);
      } else if (i + 1 >= gsm_.size()) {
        Replace();  // ESC with nothing after it
      } else {
        auto code = static_cast<uint8_t>(gsm_[++i]);
        if (code >= 0x80) {
          Replace();
        } else if (code == kGsmEscape) {
          AppendUtf8(&out_, U' ');  // reserved for another extension table: show a space
        } else if (char16_t c = GsmExtensionToUnicode(code); c != 0) {
          AppendUtf8(&out_, c);
        } else {
          AppendUtf8(&out_, kGsmToUnicode[code]);
        }
      }
    }
    gsm_.clear();
  }

  void FlushUtf16() {
    out_.reserve(out_.size() + utf16_.size() * 3);
    for (std::size_t i = 0; i < utf16_.size(); ++i) {
      char16_t u = utf16_[i];
      if (u >= 0xD800 && u <= 0xDBFF && i + 1 < utf16_.size() && utf16_[i + 1] >= 0xDC00 &&
          utf16_[i + 1] <= 0xDFFF) {
        char32_t cp = 0x10000 + ((static_cast<char32_t>(u) - 0xD800) << 10) + (utf16_[i + 1] - 0xDC00);
        AppendUtf8(&out_, cp);
        ++i;
      } else if ((u >= 0xD800 && u <= 0xDFFF) || u == 0) {
        Replace();
      } else {
        AppendUtf8(&out_, u);
      }
    }
    utf16_.clear();
  }

  std::string out_;
  std::size_t replacements_ = 0;
  std::string gsm_;
  std::u16string utf16_;
};

// Septets of one packed part, without the padding septet 23.038 §6.1.2.3.1 describes.
std::string UnpackPart(std::string_view packed, std::size_t udh_length) {
  std::size_t fill = GsmFillBits(udh_length);
  std::string septets = UnpackGsm7(packed, fill);
  std::size_t bits = packed.size() * 8;
  bool last_septet_is_spare_bits = bits >= fill && (bits - fill) % 7 == 0;
  if (last_septet_is_spare_bits && !septets.empty() &&
      (septets.back() == kGsmCarriageReturn || septets.back() == 0)) {
    septets.pop_back();
  }
  return septets;
}

std::u16string Utf16Units(std::string_view bytes, bool* odd_trailing_byte) {
  std::u16string units;
  units.reserve(bytes.size() / 2);
  for (std::size_t i = 0; i + 1 < bytes.size(); i += 2) {
    units.push_back(static_cast<char16_t>((static_cast<uint8_t>(bytes[i]) << 8) |
                                          static_cast<uint8_t>(bytes[i + 1])));
  }
  while (!units.empty() && units.back() == 0) units.pop_back();  // NUL terminator(s)
  *odd_trailing_byte = bytes.size() % 2 != 0;
  return units;
}

}  // namespace

DataCodingInfo ClassifyDataCoding(uint8_t dc, DefaultAlphabet default_alphabet) {
  DataCodingInfo info;
  if (dc <= 0x0F) {
    switch (dc) {
      case 0x00:
        switch (default_alphabet) {
          case DefaultAlphabet::kIa5: info.alphabet = TextAlphabet::kIa5; break;
          case DefaultAlphabet::kLatin1: info.alphabet = TextAlphabet::kLatin1; break;
          default: info.alphabet = TextAlphabet::kGsm7; break;
        }
        break;
      case 0x01: info.alphabet = TextAlphabet::kIa5; break;
      case 0x02:
      case 0x04: info.alphabet = TextAlphabet::kBinary; break;
      case 0x03: info.alphabet = TextAlphabet::kLatin1; break;
      case 0x08: info.alphabet = TextAlphabet::kUcs2; break;
      default: info.alphabet = TextAlphabet::kUnsupported; break;  // JIS, Cyrillic, Hebrew, ...
    }
    return info;
  }
  if (dc <= 0x7F) {  // 23.038 general data coding (00xx) and automatic deletion (01xx) groups
    info.compressed = (dc & 0x20) != 0;
    if (dc & 0x10) info.message_class = static_cast<int8_t>(dc & 0x03);
    switch ((dc >> 2) & 0x03) {
      case 0: info.alphabet = TextAlphabet::kGsm7; break;
      case 1: info.alphabet = TextAlphabet::kBinary; break;
      case 2: info.alphabet = TextAlphabet::kUcs2; break;
      default: info.alphabet = TextAlphabet::kUnsupported; break;  // reserved
    }
    if (info.compressed) info.alphabet = TextAlphabet::kUnsupported;
    return info;
  }
  if (dc <= 0xBF) return info;  // reserved coding groups
  if (dc <= 0xDF) {
    info.alphabet = TextAlphabet::kGsm7;  // message waiting indication, discard/store
    return info;
  }
  if (dc <= 0xEF) {
    info.alphabet = TextAlphabet::kUcs2;  // message waiting indication, store, UCS-2
    return info;
  }
  info.message_class = static_cast<int8_t>(dc & 0x03);
  info.alphabet = (dc & 0x04) ? TextAlphabet::kBinary : TextAlphabet::kGsm7;
  return info;
}

std::size_t GsmFillBits(std::size_t udh_length) { return (7 - (udh_length * 8) % 7) % 7; }

std::string UnpackGsm7(std::string_view packed, std::size_t fill_bits) {
  std::string septets;
  std::size_t bits = packed.size() * 8;
  if (bits < fill_bits) return septets;
  std::size_t count = (bits - fill_bits) / 7;
  septets.reserve(count);
  for (std::size_t n = 0; n < count; ++n) {
    std::size_t bit = fill_bits + n * 7;
    std::size_t octet = bit / 8, shift = bit % 8;
    unsigned value = static_cast<uint8_t>(packed[octet]) >> shift;
    if (shift > 1) value |= static_cast<unsigned>(static_cast<uint8_t>(packed[octet + 1])) << (8 - shift);
    septets.push_back(static_cast<char>(value & 0x7F));
  }
  return septets;
}

std::string PackGsm7(std::string_view septets, std::size_t fill_bits) {
  std::size_t bits = fill_bits + septets.size() * 7;
  std::size_t octets = (bits + 7) / 8;
  bool pad_with_cr = octets * 8 - bits == 7;
  std::string packed(octets, '\0');
  auto put = [&](std::size_t bit, unsigned septet) {
    std::size_t octet = bit / 8, shift = bit % 8;
    packed[octet] = static_cast<char>(static_cast<uint8_t>(packed[octet]) | ((septet << shift) & 0xFF));
    if (shift > 1) {
      packed[octet + 1] = static_cast<char>(static_cast<uint8_t>(packed[octet + 1]) | (septet >> (8 - shift)));
    }
  };
  for (std::size_t n = 0; n < septets.size(); ++n) {
    put(fill_bits + n * 7, static_cast<uint8_t>(septets[n]) & 0x7F);
  }
  if (pad_with_cr) put(bits, kGsmCarriageReturn);
  return packed;
}

DecodedText DecodeConcatenatedText(std::span<const TextSegment> segments) {
  DecodedText result;
  TextAccumulator acc;
  bool first = true;
  for (const TextSegment& segment : segments) {
    DataCodingInfo info = ClassifyDataCoding(segment.data_coding, segment.options.default_alphabet);
    if (first) result.alphabet = info.alphabet;
    first = false;
    switch (info.alphabet) {
      case TextAlphabet::kBinary:
      case TextAlphabet::kUnsupported:
        result.kind = info.alphabet == TextAlphabet::kBinary ? TextKind::kBinary : TextKind::kUnsupported;
        result.alphabet = info.alphabet;
        result.utf8.clear();
        result.replacements = 0;
        return result;
      case TextAlphabet::kGsm7:
        if (segment.options.default_alphabet == DefaultAlphabet::kGsm7Packed) {
          acc.AddGsmSeptets(UnpackPart(segment.user_data, segment.options.udh_length));
        } else {
          acc.AddGsmSeptets(segment.user_data);
        }
        break;
      case TextAlphabet::kUcs2: {
        bool odd_trailing_byte = false;
        std::u16string units = Utf16Units(segment.user_data, &odd_trailing_byte);
        if (odd_trailing_byte) {
          units.push_back(static_cast<char16_t>(kReplacement));  // decodes as itself, count it here
          acc.CountReplacement();
        }
        acc.AddUtf16(units);
        break;
      }
      case TextAlphabet::kIa5:
      case TextAlphabet::kLatin1:
        acc.AddSingleByte(segment.user_data, info.alphabet);
        break;
    }
  }
  acc.Flush();
  result.utf8 = acc.TakeText();
  result.replacements = acc.replacements();
  return result;
}

DecodedText DecodeSmsText(std::string_view user_data, uint8_t data_coding, const DecodeOptions& options) {
  TextSegment segment{user_data, data_coding, options};
  return DecodeConcatenatedText(std::span<const TextSegment>(&segment, 1));
}

bool Utf8ToGsm7(std::string_view utf8, std::string* septets) {
  septets->clear();
  septets->reserve(utf8.size());
  std::size_t pos = 0;
  while (pos < utf8.size()) {
    bool bad = false;
    char32_t cp = NextCodePoint(utf8, &pos, &bad);
    uint16_t code = bad ? kNoGsm : GsmCodeFor(cp);
    if (code == kNoGsm) return false;
    if (code & kExtensionFlag) septets->push_back(static_cast<char>(kGsmEscape));
    septets->push_back(static_cast<char>(code & 0x7F));
  }
  return true;
}

namespace {

std::u16string Utf8ToUtf16(std::string_view utf8, std::size_t* replacements) {
  std::u16string units;
  units.reserve(utf8.size());
  std::size_t pos = 0;
  while (pos < utf8.size()) {
    bool bad = false;
    char32_t cp = NextCodePoint(utf8, &pos, &bad);
    if (bad) ++*replacements;
    if (cp >= 0x10000) {
      cp -= 0x10000;
      units.push_back(static_cast<char16_t>(0xD800 + (cp >> 10)));
      units.push_back(static_cast<char16_t>(0xDC00 + (cp & 0x3FF)));
    } else {
      units.push_back(static_cast<char16_t>(cp));
    }
  }
  return units;
}

void AppendUtf16Be(std::u16string_view units, std::string* out) {
  for (char16_t u : units) {
    out->push_back(static_cast<char>(u >> 8));
    out->push_back(static_cast<char>(u & 0xFF));
  }
}

std::string ConcatUdh(uint8_t reference, std::size_t total, std::size_t seq) {
  return BuildConcatUdh(ConcatInfo{reference, static_cast<uint8_t>(total), static_cast<uint8_t>(seq), false});
}

}  // namespace

EncodedText EncodeForSms(std::string_view utf8, const EncodeOptions& options) {
  EncodedText encoded;
  std::string septets;
  if (Utf8ToGsm7(utf8, &septets)) {
    encoded.data_coding = 0x00;
    encoded.units = septets.size();
    encoded.payload = options.gsm_packed ? PackGsm7(septets) : std::move(septets);
    return encoded;
  }
  encoded.data_coding = 0x08;
  std::u16string units = Utf8ToUtf16(utf8, &encoded.replacements);
  encoded.units = units.size();
  AppendUtf16Be(units, &encoded.payload);
  return encoded;
}

SplitMessage SplitForSms(std::string_view utf8, uint8_t reference, const SplitOptions& options) {
  SplitMessage split;
  std::size_t max_parts = std::min<std::size_t>(options.max_parts, 255);
  std::string septets;
  if (Utf8ToGsm7(utf8, &septets)) {
    split.data_coding = 0x00;
    split.units = septets.size();
    auto emit = [&](std::string_view chunk, std::string udh) {
      std::size_t fill = udh.empty() ? 0 : GsmFillBits(udh.size());
      std::string part = std::move(udh);
      part += options.gsm_packed ? PackGsm7(chunk, fill) : std::string(chunk);
      split.parts.push_back(std::move(part));
    };
    if (septets.size() <= kGsmSinglePartSeptets) {
      emit(septets, {});
      return split;
    }
    std::vector<std::string_view> chunks;
    for (std::size_t start = 0, end = 0; start < septets.size(); start = end) {
      while (end < septets.size()) {
        bool escape_pair = static_cast<uint8_t>(septets[end]) == kGsmEscape && end + 1 < septets.size();
        std::size_t width = escape_pair ? 2 : 1;
        if (end - start + width > kGsmConcatPartSeptets) break;
        end += width;
      }
      chunks.push_back(std::string_view(septets).substr(start, end - start));
    }
    if (chunks.size() > max_parts) {
      split.status = SplitStatus::kTooManyParts;
      return split;
    }
    split.esm_class_flags = kEsmClassUdhi;
    for (std::size_t n = 0; n < chunks.size(); ++n) emit(chunks[n], ConcatUdh(reference, chunks.size(), n + 1));
    return split;
  }

  split.data_coding = 0x08;
  std::u16string units = Utf8ToUtf16(utf8, &split.replacements);
  split.units = units.size();
  if (units.size() <= kUcs2SinglePartUnits) {
    std::string part;
    AppendUtf16Be(units, &part);
    split.parts.push_back(std::move(part));
    return split;
  }
  std::vector<std::u16string_view> chunks;
  for (std::size_t start = 0, end = 0; start < units.size(); start = end) {
    while (end < units.size()) {
      bool surrogate_pair = units[end] >= 0xD800 && units[end] <= 0xDBFF && end + 1 < units.size() &&
                            units[end + 1] >= 0xDC00 && units[end + 1] <= 0xDFFF;
      std::size_t width = surrogate_pair ? 2 : 1;
      if (end - start + width > kUcs2ConcatPartUnits) break;
      end += width;
    }
    chunks.push_back(std::u16string_view(units).substr(start, end - start));
  }
  if (chunks.size() > max_parts) {
    split.status = SplitStatus::kTooManyParts;
    return split;
  }
  split.esm_class_flags = kEsmClassUdhi;
  for (std::size_t n = 0; n < chunks.size(); ++n) {
    std::string part = ConcatUdh(reference, chunks.size(), n + 1);
    AppendUtf16Be(chunks[n], &part);
    split.parts.push_back(std::move(part));
  }
  return split;
}

}  // namespace donagate::smpp
