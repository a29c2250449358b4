#include "billing/store/migrate.h"

#include <string>

#include "billing/store/pg.h"

namespace donagate::billing {
namespace {

// Session advisory lock key serialising appliers on one database ("donagate" in ASCII).
constexpr int64_t kMigrationLockKey = 0x646f6e6167617465;

StoreStatus ReadVersion(pg::Connection& conn, int* version) {
  pg::Result r;
  StoreStatus st = conn.Exec("SELECT to_regclass('public.schema_migrations') IS NOT NULL", &r);
  if (!st.ok()) return st;
  if (!r.Bool(0, 0)) {
    *version = 0;
    return StoreStatus::Ok();
  }
  st = conn.Exec("SELECT coalesce(max(version), 0) FROM schema_migrations", &r);
  if (!st.ok()) return st;
  *version = static_cast<int>(r.Int64(0, 0));
  return StoreStatus::Ok();
}

StoreStatus ApplyPending(pg::Connection& conn, MigrateReport* report) {
  StoreStatus st = conn.Exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations ("
      " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
      " applied_at timestamptz NOT NULL DEFAULT now(), applied_by text NOT NULL DEFAULT session_user)");
  if (!st.ok()) return st;

  pg::Result applied;
  st = conn.Exec("SELECT version, checksum FROM schema_migrations ORDER BY version", &applied);
  if (!st.ok()) return st;
  int current = 0;
  for (int i = 0; i < applied.rows(); ++i)
    current = std::max(current, static_cast<int>(applied.Int64(i, 0)));
  report->from_version = current;
  report->to_version = current;

  for (const Migration& m : EmbeddedMigrations()) {
    // The checksum is computed by the server (md5 of the text) so the check needs no crypto here.
    pg::Result sum;
    st = conn.Exec("SELECT md5($1)", pg::Params().Text(m.sql), &sum);
    if (!st.ok()) return st;
    std::string checksum = sum.String(0, 0);
    bool done = false;
    for (int i = 0; i < applied.rows(); ++i) {
      if (applied.Int64(i, 0) != m.version) continue;
      done = true;
      if (applied.String(i, 1) != checksum)
        return StoreStatus::Permanent("migration " + std::to_string(m.version) + " (" +
                                      std::string(m.name) +
                                      ") differs from the version applied to this database");
    }
    if (done) continue;
    if (m.version < current)
      return StoreStatus::Permanent("migration " + std::to_string(m.version) +
                                    " is older than the applied version " +
                                    std::to_string(current) + " but was never applied");

    pg::Transaction tx(conn);
    st = tx.Begin();
    if (!st.ok()) return st;
    st = conn.Exec(m.sql);
    if (!st.ok())
      return StoreStatus(st.transient()
                             ? StoreStatus::Transient("migration " + std::to_string(m.version) +
                                                      ": " + st.message())
                             : StoreStatus::Permanent("migration " + std::to_string(m.version) +
                                                      ": " + st.message()))
          .WithSqlstate(st.sqlstate());
    st = conn.Exec("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                   pg::Params().Int(m.version).Text(m.name).Text(checksum));
    if (!st.ok()) return st;
    st = tx.Commit();
    if (!st.ok()) return st;
    report->applied.push_back(m.version);
    report->to_version = m.version;
  }
  return StoreStatus::Ok();
}

}  // namespace

int ExpectedSchemaVersion() {
  const auto& all = EmbeddedMigrations();
  return all.empty() ? 0 : all.back().version;
}

StoreStatus Migrate(const std::string& conninfo, MigrateReport* report) {
  MigrateReport local;
  if (!report) report = &local;
  *report = MigrateReport();
  pg::Connection conn;
  // Migrations write: with a multi-host conninfo, only the primary will do.
  std::vector<std::pair<std::string, std::string>> overrides;
  if (!pg::ConninfoSets(conninfo, "target_session_attrs")) overrides.emplace_back("target_session_attrs", "read-write");
  StoreStatus st = conn.Ensure(conninfo, overrides);
  if (!st.ok()) return st;
  // Quiet NOTICEs ("relation already exists, skipping") and keep DDL from waiting forever
  // behind a long transaction.
  st = conn.Exec("SET client_min_messages = warning");
  if (!st.ok()) return st;
  st = conn.Exec("SELECT pg_advisory_lock($1)", pg::Params().Int(kMigrationLockKey));
  if (!st.ok()) return st;
  st = ApplyPending(conn, report);
  // The lock is a session lock: released explicitly, and by the server if the session dies.
  if (conn.connected()) conn.Exec("SELECT pg_advisory_unlock($1)", pg::Params().Int(kMigrationLockKey));
  return st;
}

StoreStatus CurrentSchemaVersion(const std::string& conninfo, int* version) {
  pg::Connection conn;
  StoreStatus st = conn.Ensure(conninfo);
  if (!st.ok()) return st;
  return ReadVersion(conn, version);
}

}  // namespace donagate::billing
