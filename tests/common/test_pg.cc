#include "tests/common/test_pg.h"

#include <libpq-fe.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <stdexcept>

namespace donagate::testing {
namespace {

struct ConnCloser {
  void operator()(PGconn* c) const { PQfinish(c); }
};
using Conn = std::unique_ptr<PGconn, ConnCloser>;

Conn Connect(const std::string& conninfo) {
  Conn c(PQconnectdb(conninfo.c_str()));
  if (PQstatus(c.get()) != CONNECTION_OK)
    throw std::runtime_error("connect failed: " + std::string(PQerrorMessage(c.get())));
  return c;
}

std::string Sanitize(const std::string& hint) {
  std::string out;
  for (char ch : hint) out += (isalnum(static_cast<unsigned char>(ch)) ? static_cast<char>(tolower(ch)) : '_');
  return out.substr(0, 30);
}

}  // namespace

std::string PostgresServerConninfo() {
  const char* v = getenv("DONAGATE_TEST_PG");
  return v ? v : "";
}

void ExecSql(const std::string& conninfo, const std::string& sql) {
  Conn c = Connect(conninfo);
  PGresult* r = PQexec(c.get(), sql.c_str());
  auto st = PQresultStatus(r);
  std::string err = PQresultErrorMessage(r);
  PQclear(r);
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) throw std::runtime_error(err);
}

std::string QueryValue(const std::string& conninfo, const std::string& sql) {
  Conn c = Connect(conninfo);
  PGresult* r = PQexec(c.get(), sql.c_str());
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    std::string err = PQresultErrorMessage(r);
    PQclear(r);
    throw std::runtime_error(err);
  }
  std::string v = (PQntuples(r) > 0 && !PQgetisnull(r, 0, 0)) ? PQgetvalue(r, 0, 0) : "";
  PQclear(r);
  return v;
}

std::string CreateFreshDatabase(const std::string& hint) {
  static std::atomic<int> counter{0};
  const std::string server = PostgresServerConninfo();
  if (server.empty()) throw std::runtime_error("DONAGATE_TEST_PG is not set");
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  std::string name = "t_" + Sanitize(hint) + "_" + std::to_string(getpid()) + "_" +
                     std::to_string(counter++) + "_" + std::to_string(now % 100000);
  ExecSql(server, "CREATE DATABASE " + name);
  return server + " dbname=" + name;
}

}  // namespace donagate::testing
