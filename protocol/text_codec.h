// SMS text codecs: SMPP 3.4 data_coding (§5.2.19, with the GSM 03.38 / 3GPP 23.038 coding
// groups) <-> UTF-8. Pure functions, no I/O, no allocation beyond the returned strings.
//
// Decoding never fails hard: malformed input yields U+FFFD in the text and a count in
// `replacements`, so every MO can still be recorded verbatim-ish and the caller can decide
// whether a lossy text may be acted upon (DecodedText::ok()). Decoded text never contains
// U+0000 (PostgreSQL text columns cannot store it): trailing NUL terminators are dropped and
// embedded NULs become U+FFFD.
#ifndef DONAGATE_PROTOCOL_TEXT_CODEC_H_
#define DONAGATE_PROTOCOL_TEXT_CODEC_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace donagate::smpp {

// What data_coding 0 ("SMSC default alphabet") means on a link. The same packing applies to
// the other GSM 7-bit codings (0xF0-0xF3, 0x10-0x13, ...) on that link.
enum class DefaultAlphabet : uint8_t {
  kGsm7Unpacked,  // GSM 03.38 septets, one per octet: what SMSCs send unless told otherwise
  kGsm7Packed,    // GSM 03.38 septets packed 8 per 7 octets (3GPP 23.038 §6.1.2.1.1)
  kIa5,           // some SMSCs define their default alphabet as ASCII ...
  kLatin1,        // ... or ISO-8859-1
};

enum class TextAlphabet : uint8_t {
  kGsm7,         // GSM 03.38 default alphabet + extension table
  kIa5,          // IA5 / ASCII
  kLatin1,       // ISO-8859-1
  kUcs2,         // UTF-16BE (UCS-2 plus surrogate pairs, as phones send emoji)
  kBinary,       // 8-bit data: passed through, never turned into text
  kUnsupported,  // a text coding we do not decode (JIS, Cyrillic, Hebrew, KS C 5601,
                 // compressed, reserved values): treated like binary
};

struct DataCodingInfo {
  TextAlphabet alphabet = TextAlphabet::kUnsupported;
  int8_t message_class = -1;  // 0..3 when the coding carries a message class, else -1
  bool compressed = false;    // 3GPP 23.038 general group with the compression bit
};

// Classifies a data_coding octet. 0x00-0x0F follow the SMPP 3.4 table (0 = default alphabet,
// 1 IA5, 2/4 binary, 3 Latin-1, 8 UCS-2, the rest unsupported); 0x10-0x7F the 23.038 general
// data coding groups (bits 3..2: 00 GSM, 01 8-bit, 10 UCS-2; bit 4 = class present; bit 5 =
// compressed); 0x80-0xBF reserved (unsupported); 0xC0-0xDF message waiting GSM 7-bit;
// 0xE0-0xEF message waiting UCS-2; 0xF0-0xFF class control (bit 2: 0 GSM 7-bit, 1 8-bit).
// `default_alphabet` resolves data_coding 0.
DataCodingInfo ClassifyDataCoding(uint8_t data_coding,
                                  DefaultAlphabet default_alphabet = DefaultAlphabet::kGsm7Unpacked);

struct DecodeOptions {
  DefaultAlphabet default_alphabet = DefaultAlphabet::kGsm7Unpacked;
  // Octets of User Data Header (including the UDHL octet) that preceded the user data in the
  // same short_message. Only packed GSM needs it: the septets then start after fill bits.
  std::size_t udh_length = 0;
};

enum class TextKind : uint8_t {
  kText,         // utf8 holds the message
  kBinary,       // 8-bit data; utf8 is empty, keep the raw bytes
  kUnsupported,  // coding not decoded; utf8 is empty, keep the raw bytes
};

struct DecodedText {
  TextKind kind = TextKind::kText;
  TextAlphabet alphabet = TextAlphabet::kGsm7;
  std::string utf8;
  std::size_t replacements = 0;  // malformed units replaced by U+FFFD

  // True for clean text: safe to parse commands from.
  bool ok() const { return kind == TextKind::kText && replacements == 0; }
};

// Decodes the user data (short_message after any UDH, or message_payload) of one PDU.
// UCS-2: an odd trailing byte and every unpaired surrogate become one U+FFFD each.
// GSM: octets >= 0x80 in unpacked mode, and an ESC with nothing after it, become U+FFFD;
// ESC followed by a code the extension table does not define shows the default-table
// character (23.038 §6.2.1.1); ESC ESC shows a space. Packed GSM: a final septet that only
// exists because 7 spare bits were left (CR per 23.038, or 0x00 from non-compliant encoders)
// is padding and dropped. IA5: octets >= 0x80 become U+FFFD.
DecodedText DecodeSmsText(std::string_view user_data, uint8_t data_coding,
                          const DecodeOptions& options = {});

// One part of a concatenated message.
struct TextSegment {
  std::string_view user_data;  // after the UDH
  uint8_t data_coding = 0;
  DecodeOptions options;
};

// Decodes the parts of a concatenated message, in order, as one text: a GSM escape or a UTF-16
// surrogate pair split across two parts (senders should not, some do) is joined. The result is
// kBinary / kUnsupported if any part is; its alphabet is the first part's.
DecodedText DecodeConcatenatedText(std::span<const TextSegment> segments);

// Packed GSM septets <-> one septet per octet. `fill_bits` (0..6) precede the first septet
// (23.040 §9.2.3.24: UDH fill bits). UnpackGsm7 returns every whole septet present, padding
// included; PackGsm7 pads 7 spare bits with CR as 23.038 requires.
std::string UnpackGsm7(std::string_view packed, std::size_t fill_bits = 0);
std::string PackGsm7(std::string_view septets, std::size_t fill_bits = 0);

// Fill bits needed after a UDH of `udh_length` octets so that septets start on a septet
// boundary.
std::size_t GsmFillBits(std::size_t udh_length);

// UTF-8 -> GSM septets (one per octet; extension characters as ESC + code). Returns false,
// leaving `septets` unspecified, if any character is outside the default + extension tables or
// the UTF-8 is malformed.
bool Utf8ToGsm7(std::string_view utf8, std::string* septets);

struct EncodeOptions {
  bool gsm_packed = false;  // emit GSM 7-bit packed (link setting) instead of one septet per octet
};

struct EncodedText {
  uint8_t data_coding = 0;       // 0 (GSM 7-bit) or 8 (UCS-2)
  std::string payload;           // septets (packed or not) or UTF-16BE
  std::size_t units = 0;         // GSM: septets, an extension character counting 2;
                                 // UCS-2: UTF-16 code units (a surrogate pair counts 2)
  std::size_t replacements = 0;  // malformed UTF-8 sequences sent as U+FFFD
};

// Chooses GSM 7-bit when every character fits the default + extension tables, else UCS-2, and
// returns the whole payload (message_payload mode, or a text known to fit one part).
EncodedText EncodeForSms(std::string_view utf8, const EncodeOptions& options = {});

// Per-part limits (3GPP 23.040): one part 160 septets / 70 UCS-2 units; with an 8-bit-reference
// concatenation UDH (6 octets) 153 septets / 67 units.
inline constexpr std::size_t kGsmSinglePartSeptets = 160;
inline constexpr std::size_t kGsmConcatPartSeptets = 153;
inline constexpr std::size_t kUcs2SinglePartUnits = 70;
inline constexpr std::size_t kUcs2ConcatPartUnits = 67;
inline constexpr uint8_t kEsmClassUdhi = 0x40;

enum class SplitStatus : uint8_t {
  kOk,
  kTooManyParts,  // would need more than SplitOptions::max_parts (at most 255) parts; no parts
};

struct SplitOptions {
  bool gsm_packed = false;
  std::size_t max_parts = 255;  // clamped to 255 (the UDH total field is one octet)
};

struct SplitMessage {
  SplitStatus status = SplitStatus::kOk;
  uint8_t data_coding = 0;
  uint8_t esm_class_flags = 0;     // kEsmClassUdhi when parts carry a UDH: OR it into esm_class
  std::vector<std::string> parts;  // short_message of each part, UDH included when present
  std::size_t units = 0;           // septets or UTF-16 units of the whole text
  std::size_t replacements = 0;
};

// Encodes like EncodeForSms and splits: a text within the single-part limit is one part without
// a UDH; a longer one becomes parts of at most 153 septets / 67 units, each prefixed with a
// concatenation UDH (IEI 0x00, `reference`, total, 1-based sequence). A GSM escape pair and a
// UTF-16 surrogate pair are never split across parts. An empty text is one empty part.
SplitMessage SplitForSms(std::string_view utf8, uint8_t reference, const SplitOptions& options = {});

}  // namespace donagate::smpp

#endif  // DONAGATE_PROTOCOL_TEXT_CODEC_H_
