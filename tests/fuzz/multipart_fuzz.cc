// libFuzzer target for the console's multipart/form-data reader (console/multipart.h), the
// first thing an upload's untrusted bytes meet. The input is the body; the boundary is fixed
// ("b") and the file limit small, so both the size refusal and the parser are reached.
// Properties, any violation aborts: no crash or out-of-bounds read (ASan/UBSan); an accepted
// body keeps every field within its limit, the spooled file has exactly file_bytes bytes (at most
// the limit) and the reported file name has no path separator.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <string>
#include <unistd.h>

#include "console/multipart.h"

namespace {

void Check(bool ok) {
  if (!ok) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace donagate::console;
  static const std::string spool =
      (std::filesystem::temp_directory_path() / ("multipart-fuzz-" + std::to_string(::getpid()) + ".bin")).string();
  std::istringstream in(std::string(reinterpret_cast<const char*>(data), size));
  MultipartLimits limits;
  limits.max_file_bytes = 4096;
  limits.max_field_bytes = 256;
  limits.max_fields = 8;
  MultipartUpload up;
  std::string error;
  MultipartStatus st = ReadMultipart(in, "b", spool, limits, &up, &error);
  if (st == MultipartStatus::kOk) {
    Check(up.fields.size() <= limits.max_fields);
    for (auto& [name, value] : up.fields) Check(value.size() <= limits.max_field_bytes);
    Check(up.file_bytes <= limits.max_file_bytes);
    Check(up.file_name.find_first_of("/\\") == std::string::npos);
    if (!up.file_field.empty()) Check(std::filesystem::file_size(spool) == up.file_bytes);
  } else if (st == MultipartStatus::kMalformed) {
    Check(!error.empty());
  }
  std::remove(spool.c_str());
  return 0;
}
