// The origin and path of an HTTP(S) backend URL, shared by the HTTP-speaking charging backends
// (http, carrier_billing). No I/O.
#pragma once

#include <string>
#include <string_view>

namespace donagate::billing {

struct HttpUrl {
  bool tls = false;         // https://
  std::string host;         // without IPv6 brackets
  std::string port;         // given, else 443 / 80
  std::string path;         // the path prefix, without trailing '/' (may be empty)
  std::string host_header;  // Host: value (brackets for IPv6, port unless the default)
};

// Parses "http[s]://host[:port][/path]". On failure returns false and sets *error to
// "<what> <reason>: <url>", e.g. "charging url has no host: http:///x".
bool ParseHttpUrl(std::string_view what, const std::string& url, HttpUrl* out, std::string* error);

// RFC 3986 percent-encoding of everything but the unreserved characters (path segments, query
// values, form fields).
std::string PercentEncode(std::string_view s);

}  // namespace donagate::billing
