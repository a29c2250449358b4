#include "billing/charging/http_url.h"

#include <cctype>

namespace donagate::billing {

bool ParseHttpUrl(std::string_view what, const std::string& url, HttpUrl* out, std::string* error) {
  std::string_view rest = url;
  if (rest.rfind("http://", 0) == 0) {
    out->tls = false;
    rest.remove_prefix(7);
  } else if (rest.rfind("https://", 0) == 0) {
    out->tls = true;
    rest.remove_prefix(8);
  } else {
    *error = std::string(what) + " must start with http:// or https://: " + url;
    return false;
  }
  size_t slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view{} : rest.substr(slash);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  out->path = std::string(path);
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) {
      *error = std::string(what) + " has an unclosed IPv6 bracket: " + url;
      return false;
    }
    out->host = std::string(authority.substr(1, close - 1));
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') {
        *error = std::string(what) + ": junk after IPv6 address: " + url;
        return false;
      }
      port = after.substr(1);
    }
  } else {
    size_t colon = authority.rfind(':');
    out->host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port = authority.substr(colon + 1);
  }
  if (out->host.empty()) {
    *error = std::string(what) + " has no host: " + url;
    return false;
  }
  if (port.empty()) {
    out->port = out->tls ? "443" : "80";
  } else {
    for (char c : port) {
      if (c < '0' || c > '9') {
        *error = std::string(what) + " has a bad port: " + url;
        return false;
      }
    }
    out->port = std::string(port);
  }
  const bool ipv6 = out->host.find(':') != std::string::npos;
  out->host_header = ipv6 ? "[" + out->host + "]" : out->host;
  if (out->port != (out->tls ? "443" : "80")) out->host_header += ":" + out->port;
  return true;
}

std::string PercentEncode(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

}  // namespace donagate::billing
