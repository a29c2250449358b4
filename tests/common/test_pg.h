// Access to the throwaway PostgreSQL server that tests/run.sh starts.
//
// tests/run.sh exports DONAGATE_TEST_PG (a libpq conninfo for a superuser on the
// throwaway cluster) and DONAGATE_REQUIRE_PG=1. A test that needs PostgreSQL calls
// RequirePostgres(): without a server it FAILS when DONAGATE_REQUIRE_PG=1 (so CI can
// never silently skip the database tests) and is skipped otherwise (a developer
// running one test binary by hand).
#pragma once
#include <gtest/gtest.h>

#include <string>

namespace donagate::testing {

// The server conninfo, or "" when none is configured.
std::string PostgresServerConninfo();

// A new, empty database on the test server; returns its conninfo. The name is derived
// from `hint` plus a unique suffix so parallel tests never share a database.
std::string CreateFreshDatabase(const std::string& hint);

// Runs one SQL statement on `conninfo`; throws std::runtime_error with the server's message.
void ExecSql(const std::string& conninfo, const std::string& sql);
// Runs a query returning a single value (first row, first column) as text; "" for NULL.
std::string QueryValue(const std::string& conninfo, const std::string& sql);

}  // namespace donagate::testing

// Use at the top of a TEST body: fails or skips as described above.
#define DONAGATE_REQUIRE_POSTGRES()                                                     \
  do {                                                                                  \
    if (::donagate::testing::PostgresServerConninfo().empty()) {                        \
      const char* req = getenv("DONAGATE_REQUIRE_PG");                                  \
      if (req && std::string(req) == "1") FAIL() << "DONAGATE_TEST_PG is not set";      \
      GTEST_SKIP() << "no PostgreSQL (set DONAGATE_TEST_PG or use tests/run.sh)";       \
    }                                                                                   \
  } while (0)
