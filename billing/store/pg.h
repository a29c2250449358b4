// Small RAII wrappers over libpq for the store: a connection with lazily prepared statements,
// results, text parameters (including array literals for unnest-based batch statements), a
// transaction guard and the transient-vs-permanent classification of errors.
//
// Everything is synchronous and single-threaded per Connection. No exceptions: calls return
// StoreStatus.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <utility>
#include <vector>

#include "billing/store/store_status.h"

namespace donagate::billing::pg {

// True for SQLSTATEs worth retrying later: connection exceptions (08*), serialization failure
// and deadlock (40001, 40P01), transaction resolution unknown (08007, 40003), operator
// intervention (57P01 admin shutdown, 57P02 crash shutdown, 57P03 cannot connect now, 57014
// statement timeout/cancel), read-only transaction (25006: a standby after failover),
// insufficient resources (53*: disk full, out of memory, too many connections), lock not
// available (55P03), system/IO errors (58*).
bool IsTransientSqlstate(std::string_view sqlstate);

// Whether `conninfo` (key=value or URI) sets `keyword` itself (not from the environment).
bool ConninfoSets(const std::string& conninfo, const char* keyword);

class Result {
 public:
  Result() = default;
  explicit Result(PGresult* r) : r_(r) {}

  PGresult* get() const { return r_.get(); }
  int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
  int columns() const { return r_ ? PQnfields(r_.get()) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string_view Text(int row, int col) const {
    return std::string_view(PQgetvalue(r_.get(), row, col),
                            static_cast<size_t>(PQgetlength(r_.get(), row, col)));
  }
  std::string String(int row, int col) const { return std::string(Text(row, col)); }
  // Integer columns; 0 for NULL. A malformed value (never from an integer column) gives 0.
  int64_t Int64(int row, int col) const;
  bool Bool(int row, int col) const { return !IsNull(row, col) && Text(row, col) == "t"; }

 private:
  struct Clear {
    void operator()(PGresult* r) const { PQclear(r); }
  };
  std::unique_ptr<PGresult, Clear> r_;
};

// Text-format parameters. Arrays are sent as PostgreSQL array literals ("{...}") and cast in
// SQL ($1::text[]); bytes go as hex text and are decoded in SQL (decode($n, 'hex')).
class Params {
 public:
  Params& Null();
  Params& Text(std::string_view value);
  Params& Int(int64_t value);
  Params& Bool(bool value);
  Params& OptionalText(const std::optional<std::string>& value);
  // One array parameter; std::nullopt elements become NULL.
  Params& TextArray(const std::vector<std::optional<std::string>>& values);
  Params& TextArray(const std::vector<std::string>& values);
  Params& IntArray(const std::vector<int64_t>& values);
  Params& OptionalIntArray(const std::vector<std::optional<int64_t>>& values);
  Params& BoolArray(const std::vector<bool>& values);

  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const;

 private:
  std::vector<std::optional<std::string>> values_;
  mutable std::vector<const char*> pointers_;
};

// Lower-case hex of `bytes` (for decode(..., 'hex')).
std::string HexEncode(std::string_view bytes);
// The bytes of lower-case hex (from encode(..., 'hex')); an odd trailing digit is dropped.
std::string HexDecode(std::string_view hex);

class Connection {
 public:
  Connection() = default;
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Connects if not connected (or if the previous connection broke). Failing to connect is
  // transient: the server may be restarting or failing over.
  // `overrides` (keyword, value) win over the same keywords in `conninfo`, which may be a
  // key=value string or a postgresql:// URI.
  StoreStatus Ensure(const std::string& conninfo,
                     const std::vector<std::pair<std::string, std::string>>& overrides = {});
  bool connected() const { return conn_ && PQstatus(conn_) == CONNECTION_OK; }
  // connected(), and the server has not closed the connection meanwhile (reads what already
  // arrived without blocking). Closes a dead connection.
  bool Alive();
  void Close();
  PGconn* raw() const { return conn_; }
  // `value` as a quoted SQL literal for this connection (for the few statements that cannot
  // take parameters); empty when not connected.
  std::string QuoteLiteral(std::string_view value) const;
  // The server backend's pid (tests kill it with pg_terminate_backend); 0 when not connected.
  int BackendPid() const { return conn_ ? PQbackendPID(conn_) : 0; }
  // The host and port libpq connected to (with a multi-host conninfo, the one it chose);
  // empty when not connected.
  std::string Host() const;
  std::string Port() const;

  // True when the last statement's commit (COMMIT, or the implicit commit of a statement
  // outside a transaction) came back with the server's "canceling wait for synchronous
  // replication" WARNING (SQLSTATE 01000): the transaction committed on this server but no
  // synchronous standby confirmed it — a statement timeout or cancel ended the wait. Check()
  // turns such a result into a transient failure (see kUnreplicatedCommit), because "ack after
  // commit" needs the commit to survive a failover, and a caller that takes it as ok acks
  // what a promoted standby may not have.
  bool last_commit_unreplicated() const { return unreplicated_commit_; }

  // A client-side bound on every statement (0 = none): a statement still running after
  // `after` is canceled (PQcancel) and its result awaited. The server's statement_timeout
  // bounds statements but not a COMMIT waiting for a synchronous standby (it is disarmed
  // before the commit), so without this a lost standby blocks the calling thread forever;
  // with it the wait is canceled, the transaction stays committed locally and the server
  // warns — which Check() reports as kUnreplicatedCommit. Set it a little above
  // statement_timeout so that ordinary statements are still ended by the server.
  void SetCancelAfter(std::chrono::milliseconds after) { cancel_after_ = after; }

  // Runs a statement without parameters (may hold several statements).
  StoreStatus Exec(std::string_view sql, Result* out = nullptr);
  // Runs a parameterised statement (unnamed prepared statement).
  StoreStatus Exec(std::string_view sql, const Params& params, Result* out = nullptr);
  // Runs a named prepared statement, preparing it on first use on this connection.
  StoreStatus Prepared(const char* name, std::string_view sql, const Params& params,
                       Result* out = nullptr);

 private:
  StoreStatus Check(PGresult* raw, Result* out);
  // After a successful PQsend*: waits for the results (canceling at cancel_after_) and returns
  // the last one, or the first error; nullptr when none arrived.
  PGresult* Await(bool sent);
  static void OnNotice(void* self, const PGresult* notice);

  PGconn* conn_ = nullptr;
  std::unordered_set<std::string> prepared_;
  PQnoticeReceiver previous_receiver_ = nullptr;
  void* previous_receiver_arg_ = nullptr;
  bool unreplicated_commit_ = false;  // set by OnNotice during the current statement
  std::chrono::milliseconds cancel_after_{0};
};

// The message prefix of the transient status Check() returns for a commit that no synchronous
// standby confirmed (its sqlstate is the warning's, 01000). The transaction IS committed on the
// server it ran on; whether it survives a failover is unknown until a later synchronous commit
// succeeds (WAL is replicated in order). IsUnreplicatedCommit tells such a status apart.
inline constexpr std::string_view kUnreplicatedCommit =
    "commit not confirmed by a synchronous standby (committed on the primary only)";
bool IsUnreplicatedCommit(const StoreStatus& status);

// BEGIN on construction is explicit (Begin) so its status is returned; the destructor rolls
// back a transaction that was begun and not committed (the connection may be dead: then the
// server has rolled back already).
class Transaction {
 public:
  explicit Transaction(Connection& conn) : conn_(conn) {}
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  StoreStatus Begin(std::string_view begin_sql = "BEGIN");
  // A failed COMMIT over a lost connection is transient and means "outcome unknown".
  StoreStatus Commit();
  // Runs `sql` (no parameters; may be several statements) and COMMIT in ONE round trip.
  StoreStatus CommitWith(std::string_view sql);
  void Rollback();

 private:
  Connection& conn_;
  bool open_ = false;
};

}  // namespace donagate::billing::pg
