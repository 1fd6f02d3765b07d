// One worker's PostgreSQL session: statements prepared once, reconnect and one retry on failure.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/key_record.hpp"
#include "core/error.hpp"
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

class Database {
 public:
  Database(std::string conninfo, int statement_timeout_ms);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Each call maps a database failure to 503 (unreachable, timed out) or 500 (anything else)
  // and logs the raw error with `trace_id`; nothing internal reaches the client.
  Result<std::optional<KeyRecord>> FindKey(std::string_view key_id, std::string_view org_id, std::string_view trace_id);
  // The page, with the statement's own check of the caller and of the collection.
  Result<Listing> ListTracks(const ListingCaller& caller, const ListParams& params, std::string_view trace_id);
  // No database attempt (connect or statement) starts after `deadline`: the request's budget.
  void StartRequest(std::chrono::steady_clock::time_point deadline) { deadline_ = deadline; }
  // True when authorizations cached from this database may be stale: a key or membership changed
  // (LISTEN/NOTIFY), or the session was reopened (notifications may have been missed). Cheap: it
  // reads what the server already sent, without a round trip.
  bool AuthChanged();
  // One round trip, for the health check.
  Result<bool> Ping(std::string_view trace_id);
  // Database calls that failed since the worker started (for the status page).
  uint64_t failures() const { return failures_; }
  // Opens the session now if it is not open (workers call this at start, to fail fast in logs).
  bool Connect(std::string_view trace_id);

 private:
  struct Statements;
  template <typename Body>
  auto Run(std::string_view what, std::string_view trace_id, Body&& body) -> Result<decltype(body())>;
  void OpenSession();
  void CloseSession();
  // After a failed statement or prepare: drop that statement, and the session if it is unusable.
  void DropFailed(std::string_view sqlstate);
  bool SessionBroken() const;

  std::string conninfo_;
  std::string statement_timeout_;
  std::unique_ptr<soci::session> session_;
  std::unique_ptr<Statements> statements_;
  uint64_t failures_ = 0;
  bool auth_changed_ = true;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
};

}  // namespace music_api
