// A small synchronous HTTP client for donagated's admin endpoints (loopback by default,
// bearer token). donagatectl's `links`, `pause-charging`, ... are thin wrappers over it.
#pragma once

#include <string>

namespace donagate::ctl {

struct AdminResponse {
  int status = 0;        // HTTP status; 0 when the request could not be made
  std::string body;
  std::string error;     // transport error, when status == 0
};

// `address` is "host:port". Never prints the token.
AdminResponse AdminRequest(const std::string& address, const std::string& method, const std::string& target,
                           const std::string& token);

}  // namespace donagate::ctl
