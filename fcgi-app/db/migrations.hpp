// The numbered migrations in sql/, compiled in, and the runner that applies the pending ones.
#pragma once

#include <libpq-fe.h>

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace music_api {

struct Migration {
  std::string_view name;  // e.g. "001_schema"
  std::string_view sql;
};
std::span<const Migration> Migrations();

// Applies each pending migration in its own transaction, recording it in schema_migrations.
// Returns the names applied (empty when up to date). Throws std::runtime_error with the
// migration's name and PostgreSQL's message on failure.
std::vector<std::string> ApplyMigrations(PGconn* connection);

}  // namespace music_api
