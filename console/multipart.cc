#include "console/multipart.h"

#include <sodium.h>

#include <fstream>

#include "billing/store/pg.h"

namespace donagate::console {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

// The value of `param` in a header value such as `form-data; name="f"; filename="a.csv"`.
std::string HeaderParam(std::string_view value, std::string_view param) {
  const std::string lower = Lower(value);
  const std::string key = std::string(param) + "=";
  for (size_t pos = 0; (pos = lower.find(key, pos)) != std::string::npos; pos += key.size()) {
    // A whole parameter name: at the start or after ';' and spaces ("filename=" is not "name=").
    size_t before = pos;
    while (before > 0 && value[before - 1] == ' ') --before;
    if (before != 0 && value[before - 1] != ';') continue;
    size_t v = pos + key.size();
    if (v < value.size() && value[v] == '"') {
      std::string out;
      // Browsers send backslashes as they are (a Windows path) and quotes as %22: no escapes.
      for (size_t i = v + 1; i < value.size() && value[i] != '"'; ++i) out += value[i];
      return out;
    }
    size_t end = value.find(';', v);
    std::string out(value.substr(v, end == std::string_view::npos ? std::string_view::npos : end - v));
    while (!out.empty() && out.back() == ' ') out.pop_back();
    return out;
  }
  return "";
}

// A buffered reader over the body with a look-ahead window large enough to see a delimiter.
class Reader {
 public:
  explicit Reader(std::istream& in) : in_(in) {}
  // Ensures at least `n` bytes are buffered, unless the stream ends first.
  void Fill(size_t n) {
    while (buf_.size() - pos_ < n && in_) {
      if (pos_ > (1u << 16)) {
        buf_.erase(0, pos_);
        pos_ = 0;
      }
      char chunk[1 << 16];
      in_.read(chunk, sizeof chunk);
      buf_.append(chunk, static_cast<size_t>(in_.gcount()));
    }
  }
  std::string_view Window() const { return std::string_view(buf_).substr(pos_); }
  void Consume(size_t n) { pos_ += n; }

 private:
  std::istream& in_;
  std::string buf_;
  size_t pos_ = 0;
};

}  // namespace

std::string MultipartBoundary(std::string_view content_type) {
  if (Lower(content_type.substr(0, content_type.find(';'))) != "multipart/form-data") return "";
  std::string b = HeaderParam(content_type, "boundary");
  return b.size() <= 70 ? b : "";  // RFC 2046: at most 70 characters
}

MultipartStatus ReadMultipart(std::istream& in, const std::string& boundary, const std::string& file_path,
                              const MultipartLimits& limits, MultipartUpload* out, std::string* error) {
  auto malformed = [&](const std::string& why) {
    *error = "the upload is not a well-formed form: " + why;
    return MultipartStatus::kMalformed;
  };
  if (boundary.empty()) return malformed("no boundary");
  Reader r(in);
  // The body starts with "--boundary" (a preamble before it is allowed and skipped).
  const std::string first = "--" + boundary;
  const std::string delimiter = "\r\n--" + boundary;
  r.Fill(first.size() + 4096);
  size_t at = r.Window().find(first);
  if (at == std::string_view::npos) return malformed("no first boundary");
  r.Consume(at + first.size());
  for (;;) {
    r.Fill(2);
    std::string_view w = r.Window();
    if (w.starts_with("--")) return MultipartStatus::kOk;  // closing delimiter
    if (!w.starts_with("\r\n")) return malformed("text after a boundary");
    r.Consume(2);
    // Part headers, up to the empty line.
    r.Fill(limits.max_part_header_bytes + 4);
    w = r.Window();
    size_t end = w.find("\r\n\r\n");
    if (end == std::string_view::npos || end > limits.max_part_header_bytes) return malformed("part headers");
    std::string name, filename;
    bool has_filename = false;
    for (size_t p = 0; p < end;) {
      size_t eol = w.find("\r\n", p);
      if (eol == std::string_view::npos || eol > end) eol = end;
      std::string_view line = w.substr(p, eol - p);
      size_t colon = line.find(':');
      if (colon != std::string_view::npos && Lower(line.substr(0, colon)) == "content-disposition") {
        std::string_view value = line.substr(colon + 1);
        name = HeaderParam(value, "name");
        has_filename = Lower(value).find("filename=") != std::string::npos;
        filename = HeaderParam(value, "filename");
      }
      p = eol + 2;
    }
    r.Consume(end + 4);
    if (name.empty()) return malformed("a part without a name");
    const bool is_file = has_filename;
    std::ofstream file;
    crypto_hash_sha256_state sha;
    std::string value;
    if (is_file) {
      if (!out->file_field.empty()) return malformed("more than one file");
      out->file_field = name;
      // Display only: the last path segment, whatever the browser sent.
      size_t slash = filename.find_last_of("/\\");
      out->file_name = slash == std::string::npos ? filename : filename.substr(slash + 1);
      if (out->file_name.size() > 200) out->file_name.resize(200);
      file.open(file_path, std::ios::binary | std::ios::trunc);
      if (!file) {
        *error = "the console cannot write its spool file";
        return MultipartStatus::kMalformed;
      }
      crypto_hash_sha256_init(&sha);
    } else if (out->fields.size() >= limits.max_fields) {
      return malformed("too many fields");
    }
    // The part's content runs to the next "\r\nboundary"; everything before the last
    // delimiter-length bytes of the window can be passed on.
    for (;;) {
      r.Fill(delimiter.size() + (1 << 16));
      w = r.Window();
      size_t d = w.find(delimiter);
      const bool found = d != std::string_view::npos;
      if (!found && w.size() < delimiter.size()) return malformed("the body ends inside a part");
      const size_t take = found ? d : w.size() - (delimiter.size() - 1);
      std::string_view chunk = w.substr(0, take);
      if (is_file) {
        out->file_bytes += chunk.size();
        if (out->file_bytes > limits.max_file_bytes) return MultipartStatus::kTooLarge;
        file.write(chunk.data(), static_cast<std::streamsize>(chunk.size()));
        crypto_hash_sha256_update(&sha, reinterpret_cast<const unsigned char*>(chunk.data()), chunk.size());
      } else {
        if (value.size() + chunk.size() > limits.max_field_bytes) return malformed("field " + name + " is too long");
        value.append(chunk);
      }
      r.Consume(take);
      if (found) {
        r.Consume(delimiter.size());
        break;
      }
    }
    if (is_file) {
      unsigned char digest[crypto_hash_sha256_BYTES];
      crypto_hash_sha256_final(&sha, digest);
      out->file_sha256_hex = billing::pg::HexEncode(std::string(reinterpret_cast<char*>(digest), sizeof digest));
      file.close();
      if (!file) {
        *error = "the console cannot write its spool file";
        return MultipartStatus::kMalformed;
      }
    } else {
      out->fields[name] = std::move(value);
    }
  }
}

}  // namespace donagate::console
