// The result of a store call: ok, or a failure that is either transient (try again later:
// the database is unreachable, restarting, failing over, read-only, out of disk, or the
// transaction lost a serialization race) or permanent (the request itself is wrong, or the
// schema is not what this binary expects). Callers map transient to the SMPP temporary error
// (the SMSC redelivers) and permanent to an alert: retrying a permanent failure cannot help.
#pragma once

#include <string>
#include <utility>

namespace donagate::billing {

class StoreStatus {
 public:
  enum class Code { kOk, kTransient, kPermanent };

  StoreStatus() = default;
  static StoreStatus Ok() { return StoreStatus(); }
  static StoreStatus Transient(std::string message) {
    return StoreStatus(Code::kTransient, std::move(message));
  }
  static StoreStatus Permanent(std::string message) {
    return StoreStatus(Code::kPermanent, std::move(message));
  }

  bool ok() const { return code_ == Code::kOk; }
  bool transient() const { return code_ == Code::kTransient; }
  bool permanent() const { return code_ == Code::kPermanent; }
  Code code() const { return code_; }
  // The server's or the store's explanation; empty when ok.
  const std::string& message() const { return message_; }
  // The SQLSTATE when the server sent one ("40001", "57P01", ...), else empty.
  const std::string& sqlstate() const { return sqlstate_; }

  StoreStatus WithSqlstate(std::string sqlstate) && {
    sqlstate_ = std::move(sqlstate);
    return std::move(*this);
  }
  // "ok", "transient: <message>" or "permanent: <message>".
  std::string ToString() const {
    switch (code_) {
      case Code::kOk: return "ok";
      case Code::kTransient: return "transient: " + message_;
      case Code::kPermanent: return "permanent: " + message_;
    }
    return "?";
  }

 private:
  StoreStatus(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  Code code_ = Code::kOk;
  std::string message_;
  std::string sqlstate_;
};

}  // namespace donagate::billing
