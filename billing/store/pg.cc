#include "billing/store/pg.h"

#include <poll.h>

#include <cerrno>
#include <charconv>

namespace donagate::billing::pg {

bool IsTransientSqlstate(std::string_view s) {
  if (s.size() != 5) return false;
  std::string_view cls = s.substr(0, 2);
  if (cls == "08" || cls == "53" || cls == "58") return true;
  return s == "40001" || s == "40P01" || s == "40003" || s == "57P01" || s == "57P02" ||
         s == "57P03" || s == "57P05" || s == "57014" || s == "25006" || s == "55P03" ||
         s == "25P03";
}

bool ConninfoSets(const std::string& conninfo, const char* keyword) {
  char* error = nullptr;
  PQconninfoOption* options = PQconninfoParse(conninfo.c_str(), &error);
  if (error) PQfreemem(error);
  if (!options) return false;  // unparsable: libpq's own connect reports why
  bool set = false;
  for (PQconninfoOption* o = options; o->keyword; ++o) {
    if (std::string_view(o->keyword) == keyword && o->val && *o->val) set = true;
  }
  PQconninfoFree(options);
  return set;
}

int64_t Result::Int64(int row, int col) const {
  if (IsNull(row, col)) return 0;
  std::string_view t = Text(row, col);
  int64_t v = 0;
  std::from_chars(t.data(), t.data() + t.size(), v);
  return v;
}

namespace {

// Quotes one element of an array literal: "..." with backslash and quote escaped.
void AppendArrayElement(std::string* out, std::string_view v) {
  out->push_back('"');
  for (char c : v) {
    if (c == '"' || c == '\\') out->push_back('\\');
    out->push_back(c);
  }
  out->push_back('"');
}

}  // namespace

Params& Params::Null() {
  values_.emplace_back(std::nullopt);
  return *this;
}
Params& Params::Text(std::string_view value) {
  values_.emplace_back(std::string(value));
  return *this;
}
Params& Params::Int(int64_t value) {
  values_.emplace_back(std::to_string(value));
  return *this;
}
Params& Params::Bool(bool value) {
  values_.emplace_back(value ? "t" : "f");
  return *this;
}
Params& Params::OptionalText(const std::optional<std::string>& value) {
  values_.push_back(value);
  return *this;
}
Params& Params::TextArray(const std::vector<std::optional<std::string>>& values) {
  std::string lit = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) lit.push_back(',');
    if (values[i]) AppendArrayElement(&lit, *values[i]);
    else lit += "NULL";
  }
  lit.push_back('}');
  values_.emplace_back(std::move(lit));
  return *this;
}
Params& Params::TextArray(const std::vector<std::string>& values) {
  std::string lit = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) lit.push_back(',');
    AppendArrayElement(&lit, values[i]);
  }
  lit.push_back('}');
  values_.emplace_back(std::move(lit));
  return *this;
}
Params& Params::IntArray(const std::vector<int64_t>& values) {
  std::string lit = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) lit.push_back(',');
    lit += std::to_string(values[i]);
  }
  lit.push_back('}');
  values_.emplace_back(std::move(lit));
  return *this;
}
Params& Params::OptionalIntArray(const std::vector<std::optional<int64_t>>& values) {
  std::string lit = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) lit.push_back(',');
    lit += values[i] ? std::to_string(*values[i]) : std::string("NULL");
  }
  lit.push_back('}');
  values_.emplace_back(std::move(lit));
  return *this;
}
Params& Params::BoolArray(const std::vector<bool>& values) {
  std::string lit = "{";
  for (size_t i = 0; i < values.size(); ++i) {
    if (i) lit.push_back(',');
    lit.push_back(values[i] ? 't' : 'f');
  }
  lit.push_back('}');
  values_.emplace_back(std::move(lit));
  return *this;
}

const char* const* Params::values() const {
  pointers_.clear();
  for (const auto& v : values_) pointers_.push_back(v ? v->c_str() : nullptr);
  return pointers_.data();
}

std::string HexDecode(std::string_view hex) {
  auto nib = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  std::string out;
  out.reserve(hex.size() / 2);
  for (size_t k = 0; k + 1 < hex.size(); k += 2) {
    out.push_back(static_cast<char>((nib(hex[k]) << 4) | nib(hex[k + 1])));
  }
  return out;
}

std::string HexEncode(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 0x0f]);
  }
  return out;
}

Connection::~Connection() { Close(); }

bool Connection::Alive() {
  if (!connected()) return false;
  // Notice a connection the server closed while we were idle (restart, failover,
  // pg_terminate_backend) before using it: libpq's socket is non-blocking, so this only reads
  // what already arrived. Twice: the first read may only collect the server's FATAL message,
  // the second sees the EOF.
  bool alive = PQconsumeInput(conn_) == 1 && PQconsumeInput(conn_) == 1 &&
               PQstatus(conn_) == CONNECTION_OK;
  if (!alive) Close();
  return alive;
}

std::string Connection::Host() const {
  const char* h = conn_ ? PQhost(conn_) : nullptr;
  return h ? h : "";
}

std::string Connection::Port() const {
  const char* p = conn_ ? PQport(conn_) : nullptr;
  return p ? p : "";
}

bool IsUnreplicatedCommit(const StoreStatus& status) {
  return status.transient() && status.sqlstate() == "01000" &&
         std::string_view(status.message()).substr(0, kUnreplicatedCommit.size()) == kUnreplicatedCommit;
}

void Connection::OnNotice(void* self, const PGresult* notice) {
  auto* c = static_cast<Connection*>(self);
  const char* severity = PQresultErrorField(notice, PG_DIAG_SEVERITY_NONLOCALIZED);
  const char* sqlstate = PQresultErrorField(notice, PG_DIAG_SQLSTATE);
  // The server's SyncRepWaitForLSN warns with the generic WARNING code (01000) and a message
  // that lc_messages may translate; none of our statements raises a warning of its own, so the
  // nonlocalized severity and the code are what we match.
  if (severity && sqlstate && std::string_view(severity) == "WARNING" && std::string_view(sqlstate) == "01000") {
    c->unreplicated_commit_ = true;
    return;  // reported as the statement's status (kUnreplicatedCommit), not on stderr
  }
  if (c->previous_receiver_) c->previous_receiver_(nullptr, notice);
}

void Connection::Close() {
  if (conn_) PQfinish(conn_);
  conn_ = nullptr;
  prepared_.clear();
}

StoreStatus Connection::Ensure(const std::string& conninfo,
                               const std::vector<std::pair<std::string, std::string>>& overrides) {
  if (Alive()) return StoreStatus::Ok();
  Close();
  // Keywords are processed in order and the last occurrence wins; dbname first is expanded
  // as the whole conninfo string.
  std::vector<const char*> keys{"dbname"};
  std::vector<const char*> values{conninfo.c_str()};
  for (const auto& [k, v] : overrides) {
    keys.push_back(k.c_str());
    values.push_back(v.c_str());
  }
  keys.push_back(nullptr);
  values.push_back(nullptr);
  conn_ = PQconnectdbParams(keys.data(), values.data(), /*expand_dbname=*/1);
  if (!conn_) return StoreStatus::Transient("cannot allocate a libpq connection");
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string message = PQerrorMessage(conn_);
    while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
    Close();
    return StoreStatus::Transient("cannot connect to PostgreSQL: " + message);
  }
  // libpq's default receiver ignores its argument (it hands the text to the notice
  // processor), so it can be chained with a null one.
  previous_receiver_ = PQsetNoticeReceiver(conn_, &Connection::OnNotice, this);
  return StoreStatus::Ok();
}

StoreStatus Connection::Check(PGresult* raw, Result* out) {
  Result result(raw);
  ExecStatusType st = raw ? PQresultStatus(raw) : PGRES_FATAL_ERROR;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    if (unreplicated_commit_) {
      return StoreStatus::Transient(std::string(kUnreplicatedCommit) +
                                    ": the wait for synchronous replication was canceled "
                                    "(statement timeout); no standby has confirmed it")
          .WithSqlstate("01000");
    }
    if (out) *out = std::move(result);
    return StoreStatus::Ok();
  }
  std::string message;
  std::string sqlstate;
  if (raw) {
    message = PQresultErrorMessage(raw);
    const char* s = PQresultErrorField(raw, PG_DIAG_SQLSTATE);
    if (s) sqlstate = s;
  }
  if (message.empty() && conn_) message = PQerrorMessage(conn_);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  if (message.empty()) message = "query failed";
  bool broken = !conn_ || PQstatus(conn_) != CONNECTION_OK;
  if (broken) {
    Close();
    return StoreStatus::Transient("connection lost: " + message).WithSqlstate(sqlstate);
  }
  // A read-only server (a demoted primary after failover) or one shutting down will not get
  // better on this connection: drop it, so the next call reconnects and libpq's
  // target_session_attrs=read-write can find the new primary.
  if (sqlstate == "25006" || sqlstate.rfind("57P", 0) == 0 || sqlstate.rfind("08", 0) == 0) {
    Close();
    return StoreStatus::Transient(message).WithSqlstate(sqlstate);
  }
  if (IsTransientSqlstate(sqlstate))
    return StoreStatus::Transient(message).WithSqlstate(sqlstate);
  return StoreStatus::Permanent(message).WithSqlstate(sqlstate);
}

PGresult* Connection::Await(bool sent) {
  if (!sent) return nullptr;  // Check() reports PQerrorMessage
  using Clock = std::chrono::steady_clock;
  const bool bounded = cancel_after_.count() > 0;
  const auto deadline = Clock::now() + cancel_after_;
  bool canceled = false;
  // Until PQgetResult would not block. Called before every PQgetResult: a query string of
  // several statements ("INSERT ...; COMMIT") yields one result per statement, and the wait
  // for synchronous replication is behind the last one.
  auto wait_ready = [&] {
    while (PQisBusy(conn_)) {
      const int fd = PQsocket(conn_);
      if (fd < 0) return;
      int timeout_ms = -1;
      if (bounded && !canceled) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) {
          // Best effort: the server ends the statement (or the synchronous-replication wait)
          // and answers on this connection; if the cancel cannot be delivered we keep
          // waiting, as a blocking PQexec would.
          if (PGcancel* cancel = PQgetCancel(conn_)) {
            char error[256];
            PQcancel(cancel, error, sizeof error);
            PQfreeCancel(cancel);
          }
          canceled = true;
          continue;
        }
        timeout_ms = static_cast<int>(left);
      }
      pollfd p{fd, POLLIN, 0};
      const int n = poll(&p, 1, timeout_ms);
      if (n < 0 && errno != EINTR) return;
      if (n > 0 && PQconsumeInput(conn_) == 0) return;  // broken: PQgetResult reports it
    }
  };
  PGresult* last = nullptr;
  for (;;) {
    wait_ready();
    PGresult* r = PQgetResult(conn_);
    if (!r) break;
    if (last && PQresultStatus(last) == PGRES_FATAL_ERROR) {
      PQclear(r);  // keep the first error, as PQexec does
    } else {
      PQclear(last);
      last = r;
    }
    if (PQstatus(conn_) == CONNECTION_BAD) break;
  }
  return last;
}

StoreStatus Connection::Exec(std::string_view sql, Result* out) {
  if (!connected()) return StoreStatus::Transient("not connected to PostgreSQL");
  unreplicated_commit_ = false;
  std::string text(sql);
  return Check(Await(PQsendQuery(conn_, text.c_str()) == 1), out);
}

StoreStatus Connection::Exec(std::string_view sql, const Params& params, Result* out) {
  if (!connected()) return StoreStatus::Transient("not connected to PostgreSQL");
  unreplicated_commit_ = false;
  std::string text(sql);
  return Check(Await(PQsendQueryParams(conn_, text.c_str(), params.size(), nullptr, params.values(),
                                       nullptr, nullptr, 0) == 1),
               out);
}

StoreStatus Connection::Prepared(const char* name, std::string_view sql, const Params& params,
                                 Result* out) {
  if (!connected()) return StoreStatus::Transient("not connected to PostgreSQL");
  unreplicated_commit_ = false;
  if (!prepared_.count(name)) {
    std::string text(sql);
    StoreStatus st = Check(Await(PQsendPrepare(conn_, name, text.c_str(), 0, nullptr) == 1), nullptr);
    if (!st.ok()) return st;
    prepared_.insert(name);
  }
  return Check(Await(PQsendQueryPrepared(conn_, name, params.size(), params.values(), nullptr, nullptr, 0) == 1),
               out);
}

Transaction::~Transaction() { Rollback(); }

StoreStatus Transaction::Begin(std::string_view begin_sql) {
  StoreStatus st = conn_.Exec(begin_sql);
  open_ = st.ok();
  return st;
}

std::string Connection::QuoteLiteral(std::string_view value) const {
  if (!conn_) return {};
  char* quoted = PQescapeLiteral(conn_, value.data(), value.size());
  if (!quoted) return {};
  std::string out(quoted);
  PQfreemem(quoted);
  return out;
}

StoreStatus Transaction::Commit() { return CommitWith({}); }

StoreStatus Transaction::CommitWith(std::string_view sql) {
  if (!open_) return StoreStatus::Permanent("commit without an open transaction");
  Result r;
  std::string text(sql);
  if (!text.empty()) text += "; ";
  text += "COMMIT";
  StoreStatus st = conn_.Exec(text, &r);
  open_ = false;
  if (!st.ok()) {
    if (st.transient() && !conn_.connected())
      return StoreStatus::Transient("commit outcome unknown (connection lost during COMMIT): " +
                                    st.message())
          .WithSqlstate(st.sqlstate());
    return st;
  }
  // A COMMIT of a transaction that had failed answers "ROLLBACK" instead of an error.
  if (std::string_view(PQcmdStatus(r.get())) == "ROLLBACK")
    return StoreStatus::Permanent("transaction was rolled back");
  return StoreStatus::Ok();
}

void Transaction::Rollback() {
  if (!open_) return;
  open_ = false;
  if (conn_.connected()) conn_.Exec("ROLLBACK");
}

}  // namespace donagate::billing::pg
