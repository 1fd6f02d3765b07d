// The numbered migrations in sql/, compiled in, and the runner that applies the pending ones.
#include "db/migrations.hpp"

#include <stdexcept>

#include "db/admin_statements.hpp"

namespace music_api {
namespace {

constexpr Migration kMigrations[] = {
#include "migrations.inc"
};

// Migration files hold several statements and DO blocks, so they go through PQexec, which runs a
// whole script, rather than through a prepared statement.
void Exec(PGconn* connection, std::string_view sql, std::string_view context) {
  PGresult* result = PQexec(connection, std::string(sql).c_str());
  ExecStatusType status = PQresultStatus(result);
  std::string error = PQresultErrorMessage(result);
  PQclear(result);
  if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) {
    throw std::runtime_error(std::string(context) + ": " + error);
  }
}

bool Applied(PGconn* connection, std::string_view name) {
  std::string value(name);
  const char* params[] = {value.c_str()};
  PGresult* result = PQexecParams(connection, std::string(sql::admin::kMigrationApplied).c_str(), 1, nullptr, params,
                                  nullptr, nullptr, 0);
  bool ok = PQresultStatus(result) == PGRES_TUPLES_OK;
  std::string error = PQresultErrorMessage(result);
  bool applied = ok && std::string(PQgetvalue(result, 0, 0)) != "0";
  PQclear(result);
  if (!ok) throw std::runtime_error("reading schema_migrations: " + error);
  return applied;
}

void Record(PGconn* connection, std::string_view name) {
  std::string value(name);
  const char* params[] = {value.c_str()};
  PGresult* result = PQexecParams(connection, std::string(sql::admin::kRecordMigration).c_str(), 1, nullptr, params,
                                  nullptr, nullptr, 0);
  bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
  std::string error = PQresultErrorMessage(result);
  PQclear(result);
  if (!ok) throw std::runtime_error("recording " + value + ": " + error);
}

}  // namespace

std::span<const Migration> Migrations() { return kMigrations; }

std::vector<std::string> ApplyMigrations(PGconn* connection) {
  Exec(connection, sql::admin::kQuietNotices, "session setup");
  Exec(connection, sql::admin::kCreateMigrationsTable, "creating schema_migrations");
  std::vector<std::string> applied;
  for (const Migration& migration : Migrations()) {
    std::string name(migration.name);
    Exec(connection, sql::admin::kBegin, name);
    try {
      Exec(connection, sql::admin::kMigrationLock, name);
      if (!Applied(connection, name)) {
        Exec(connection, migration.sql, name);
        Record(connection, name);
        applied.push_back(name);
      }
      Exec(connection, sql::admin::kCommit, name);
    } catch (...) {
      PGresult* rollback = PQexec(connection, std::string(sql::admin::kRollback).c_str());
      PQclear(rollback);
      throw;
    }
  }
  return applied;
}

}  // namespace music_api
