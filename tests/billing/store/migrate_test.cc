// Migrations: the embedded copies are the .sql files, applying is idempotent and concurrent
// appliers are serialised.
#include "billing/store/migrate.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "tests/common/test_env.h"
#include "tests/common/test_pg.h"

namespace donagate::billing {
namespace {

using ::donagate::testing::CreateFreshDatabase;
using ::donagate::testing::ExecSql;
using ::donagate::testing::QueryValue;

std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(MigrationsTest, EmbeddedCopiesEqualTheSqlFiles) {
  std::filesystem::path dir = ::donagate::testing::SourcePath("billing/store/migrations");
  std::set<int> file_versions;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".sql") continue;
    std::string stem = entry.path().stem().string();  // NNNN_name
    ASSERT_GE(stem.size(), 6u) << stem;
    int version = std::stoi(stem.substr(0, 4));
    std::string name = stem.substr(5);
    file_versions.insert(version);
    const Migration* found = nullptr;
    for (const auto& m : EmbeddedMigrations())
      if (m.version == version) found = &m;
    ASSERT_NE(found, nullptr) << "migration " << stem
                              << " is not embedded (re-run cmake: migrations_embedded.cc is generated)";
    EXPECT_EQ(found->name, name);
    EXPECT_EQ(std::string(found->sql), ReadFile(entry.path()))
        << "the embedded migrations are stale (re-run cmake) for " << stem;
  }
  EXPECT_EQ(file_versions.size(), EmbeddedMigrations().size());
  int previous = 0;
  for (const auto& m : EmbeddedMigrations()) {
    EXPECT_EQ(m.version, previous + 1) << "versions must be consecutive";
    previous = m.version;
  }
  EXPECT_EQ(ExpectedSchemaVersion(), previous);
}

TEST(MigrateTest, AppliesEverythingOnceAndTwiceIsANoOp) {
  DONAGATE_REQUIRE_POSTGRES();
  std::string db = CreateFreshDatabase("migrate_twice");
  int version = -1;
  ASSERT_TRUE(CurrentSchemaVersion(db, &version).ok());
  EXPECT_EQ(version, 0);

  MigrateReport first;
  StoreStatus st = Migrate(db, &first);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(first.from_version, 0);
  EXPECT_EQ(first.to_version, ExpectedSchemaVersion());
  EXPECT_EQ(first.applied.size(), EmbeddedMigrations().size());
  ASSERT_TRUE(CurrentSchemaVersion(db, &version).ok());
  EXPECT_EQ(version, ExpectedSchemaVersion());

  std::string tables_before = QueryValue(
      db, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'");
  MigrateReport second;
  st = Migrate(db, &second);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_TRUE(second.applied.empty());
  EXPECT_EQ(second.from_version, ExpectedSchemaVersion());
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM schema_migrations"),
            std::to_string(EmbeddedMigrations().size()));
  EXPECT_EQ(tables_before,
            QueryValue(db, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
                           "WHERE schemaname = 'public'"));
  for (const char* role : {"donagate_daemon", "donagate_finance", "donagate_reverse"})
    EXPECT_EQ(QueryValue(db, std::string("SELECT count(*) FROM pg_roles WHERE rolname = '") + role + "'"), "1");
}

TEST(MigrateTest, ConcurrentAppliersAreSerialised) {
  DONAGATE_REQUIRE_POSTGRES();
  std::string db = CreateFreshDatabase("migrate_concurrent");
  constexpr int kAppliers = 4;
  std::vector<StoreStatus> statuses(kAppliers);
  std::vector<MigrateReport> reports(kAppliers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kAppliers; ++i)
    threads.emplace_back([&, i] { statuses[i] = Migrate(db, &reports[i]); });
  for (auto& t : threads) t.join();
  size_t applied_total = 0;
  for (int i = 0; i < kAppliers; ++i) {
    EXPECT_TRUE(statuses[i].ok()) << statuses[i].ToString();
    applied_total += reports[i].applied.size();
  }
  // Exactly one applier did the work; the others found it done.
  EXPECT_EQ(applied_total, EmbeddedMigrations().size());
  EXPECT_EQ(QueryValue(db, "SELECT count(*) FROM schema_migrations"),
            std::to_string(EmbeddedMigrations().size()));
}

TEST(MigrateTest, ConcurrentMigrationsOfDifferentDatabasesShareRolesSafely) {
  DONAGATE_REQUIRE_POSTGRES();
  // Roles are cluster-wide: migrating several fresh databases at once must not trip over
  // each other's CREATE ROLE.
  std::vector<std::string> dbs;
  for (int i = 0; i < 3; ++i) dbs.push_back(CreateFreshDatabase("migrate_roles"));
  std::vector<StoreStatus> statuses(dbs.size());
  std::vector<std::thread> threads;
  for (size_t i = 0; i < dbs.size(); ++i)
    threads.emplace_back([&, i] { statuses[i] = Migrate(dbs[i]); });
  for (auto& t : threads) t.join();
  for (const auto& st : statuses) EXPECT_TRUE(st.ok()) << st.ToString();
}

TEST(MigrateTest, ChangedAppliedMigrationIsRefused) {
  DONAGATE_REQUIRE_POSTGRES();
  std::string db = CreateFreshDatabase("migrate_checksum");
  ASSERT_TRUE(Migrate(db).ok());
  ExecSql(db, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1");
  StoreStatus st = Migrate(db);
  EXPECT_TRUE(st.permanent()) << st.ToString();
  EXPECT_NE(st.message().find("differs"), std::string::npos) << st.message();
}

TEST(MigrateTest, UnreachableServerIsTransient) {
  int port = ::donagate::testing::FreeTcpPort();
  StoreStatus st = Migrate("host=127.0.0.1 port=" + std::to_string(port) +
                           " user=postgres dbname=postgres connect_timeout=2");
  EXPECT_TRUE(st.transient()) << st.ToString();
  int version = 0;
  EXPECT_TRUE(CurrentSchemaVersion("host=127.0.0.1 port=" + std::to_string(port) +
                                       " user=postgres connect_timeout=2",
                                   &version)
                  .transient());
}

}  // namespace
}  // namespace donagate::billing
