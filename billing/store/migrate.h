// Schema migrations: numbered SQL files billing/migrations/NNNN_name.sql, embedded in the
// binary (migrations_embedded.cc, generated from the .sql files at configure time) so a
// deployed donagated/donagatectl needs no source tree.
//
// Migrate() applies, in version order, every migration newer than the database's version,
// each in its own transaction together with its schema_migrations row. Applying twice is a
// no-op. Concurrent appliers on one database are serialised by a session advisory lock, so
// two daemons starting at once (or the daemon and donagatectl) cannot both apply a file. An
// applied migration whose text changed since (checksum differs) is refused: the schema
// would not be what the file says.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "billing/store/store_status.h"

namespace donagate::billing {

struct Migration {
  int version = 0;          // NNNN
  std::string_view name;    // "core_schema"
  std::string_view sql;
};

// The embedded migrations, ascending by version.
const std::vector<Migration>& EmbeddedMigrations();
// The version this binary needs (the highest embedded one). /readyz compares it with
// CurrentSchemaVersion.
int ExpectedSchemaVersion();

struct MigrateReport {
  int from_version = 0;
  int to_version = 0;
  std::vector<int> applied;  // versions applied by this call
};

// Connects with `conninfo` (a role allowed to create tables and roles: the database owner or
// a superuser) and applies what is missing. `report` may be null.
StoreStatus Migrate(const std::string& conninfo, MigrateReport* report = nullptr);

// The highest applied version (0 for an empty database). Read-only.
StoreStatus CurrentSchemaVersion(const std::string& conninfo, int* version);

}  // namespace donagate::billing
