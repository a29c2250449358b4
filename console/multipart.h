// multipart/form-data (RFC 7578) read from a stream in bounded memory: the console's upload of
// an operator's settlement file. Small fields are kept in memory (each at most
// `max_field_bytes`, at most `max_fields` of them); the one file part is written to a spool
// file as it arrives and hashed (SHA-256) on the way, so a file of any allowed size never sits
// in memory. Exceeding `max_file_bytes` stops the read with MultipartStatus::kTooLarge (the
// caller answers 413); anything malformed with kMalformed and a sentence.
#pragma once

#include <cstdint>
#include <istream>
#include <map>
#include <string>
#include <string_view>

namespace donagate::console {

struct MultipartLimits {
  uint64_t max_file_bytes = 64ull * 1024 * 1024;
  size_t max_field_bytes = 16 * 1024;
  size_t max_fields = 64;
  size_t max_part_header_bytes = 8 * 1024;
};

struct MultipartUpload {
  std::map<std::string, std::string> fields;  // non-file parts by name
  std::string file_field;                     // name of the file part ("" when there was none)
  std::string file_name;                      // the browser's file name (display only, never a path)
  uint64_t file_bytes = 0;
  std::string file_sha256_hex;
};

enum class MultipartStatus { kOk, kMalformed, kTooLarge };

// The boundary parameter of a multipart/form-data Content-Type ("" when it is not one).
std::string MultipartBoundary(std::string_view content_type);

// Reads the whole body from `in`. The file part (at most one; a second is malformed) is written
// to `file_path` (created or truncated). On any status but kOk the spool file may hold a part
// of the upload: the caller removes it.
MultipartStatus ReadMultipart(std::istream& in, const std::string& boundary, const std::string& file_path,
                              const MultipartLimits& limits, MultipartUpload* out, std::string* error);

}  // namespace donagate::console
