// One worker's PostgreSQL session: statements prepared once, reconnect and one retry on failure.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "auth/key_record.hpp"
#include "core/error.hpp"
#include "db/conninfo.hpp"
#include "http/query_params.hpp"
#include "http/track_page.hpp"

namespace soci {
class session;
class statement;
}  // namespace soci

namespace music_api {

// Who the listing statement re-checks, with the facts the app judged the key by: the hash of the
// presented secret and the app's own clock (so both sides decide expiry by the same clock).
struct ListingCaller {
  std::string_view key_id;
  std::string_view secret_hash;
  std::string_view org_id;
  std::string_view user_id;
  int64_t now;  // unix seconds
};

struct Listing {
  bool auth_ok = false;             // the key and membership still hold (else the caller's cache was stale)
  bool collection_ok = false;       // no collection asked for, or it is the caller's in this org
  const TrackPage* page = nullptr;  // valid until the next call; empty unless both hold
};

class OverdueGuard;

// What a worker's database layer needs from the configuration.
struct DatabaseSettings {
  std::string read_conninfo;   // may name several hosts; replicas preferred
  std::string write_conninfo;  // the primary: where a stale replica's reads go instead
  ConnectionOptions options;
  int statement_timeout_ms = 0;
  int max_replica_lag_seconds = 0;
};

class Database {
 public:
  explicit Database(const DatabaseSettings& settings);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Each call maps a database failure to 503 (unreachable, timed out) or 500 (anything else)
  // and logs the raw error with `trace_id`; nothing internal reaches the client.
  Result<std::optional<KeyRecord>> FindKey(std::string_view key_id, std::string_view org_id, std::string_view trace_id);
  // The page, with the statement's own check of the caller and of the collection.
  Result<Listing> ListTracks(const ListingCaller& caller, const ListParams& params, std::string_view trace_id);
  // No attempt starts after `deadline` (request_timeout from the start), or, once a host failed
  // during this request, after deadline + 1 s + connect_timeout: the time the dead host cost.
  // So the last attempt, at most a connect and statement_timeout + 1 s, ends within the budget
  // Config::RequestAlarmSeconds counts.
  void StartRequest(std::chrono::steady_clock::time_point deadline) {
    deadline_ = deadline;
    host_failed_ = false;
  }
  // True when authorizations cached from this database may be stale because the read session
  // was reopened (possibly on another host). Key changes on the primary reach the caches through
  // the host's listener (auth_listener.hpp), not through this session.
  bool AuthChanged();
  // One round trip, for the health check.
  Result<bool> Ping(std::string_view trace_id);
  // Database calls that failed since the worker started (for the status page).
  uint64_t failures() const { return failures_; }
  // Opens the read session now if it is not open (workers call this at start, to fail fast in logs).
  bool Connect(std::string_view trace_id);

 private:
  struct Statements;
  struct Connection;
  template <typename Body>
  auto Run(std::string_view what, std::string_view trace_id, Body&& body)
      -> Result<decltype(body(std::declval<Statements&>()))>;
  bool Open(Connection& c, std::string_view trace_id);
  // After a failed statement or prepare: drop that statement, and the session if it is unusable.
  void DropFailed(Connection& c, std::string_view sqlstate);

  std::unique_ptr<Connection> read_, write_;
  std::string statement_timeout_;
  int max_replica_lag_seconds_ = 0;
  std::unique_ptr<OverdueGuard> overdue_;
  std::chrono::milliseconds overdue_after_;
  uint64_t failures_ = 0;
  bool auth_changed_ = true;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  std::chrono::seconds grace_;  // 1 s + connect_timeout, after a host failed
  bool host_failed_ = false;
  std::chrono::steady_clock::time_point primary_unreachable_until_;
};

}  // namespace music_api
