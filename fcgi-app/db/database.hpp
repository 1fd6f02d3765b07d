// One worker's PostgreSQL session: statements prepared once, reconnect and one retry on failure.
#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/key_record.hpp"
#include "core/error.hpp"
#include "db/conninfo.hpp"
#include "http/library_records.hpp"
#include "http/query_params.hpp"
#include "http/track_page.hpp"

namespace soci {
class session;
class statement;
}  // namespace soci

namespace music_api {

// Who each statement re-checks, with the facts the app judged the key by: the hash of the
// presented secret and the app's own clock (so both sides decide expiry by the same clock).
struct CheckedCaller {
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
  bool has_next = false;            // an entry exists past this page
};

// One track as the caller may see it, and its stored files.
struct TrackDetail {
  bool auth_ok = false;
  const TrackPage* track = nullptr;  // one row, or none when the caller may not see it
  struct File {
    std::string name;  // "master" or the stem's name
    std::string file_name;
  };
  std::vector<File> files;  // the master first (when stored), then the stems by name
};

// A library entry (the save's answer).
struct LibraryEntry {
  std::string id;  // mlib_…
  std::string source;
  int64_t created_at = 0;  // unix seconds
};

struct SaveOutcome {
  bool auth_ok = false;
  bool visible = false;  // the caller may see the track (else 404)
  std::optional<LibraryEntry> entry;
};

struct UnsaveOutcome {
  bool auth_ok = false;  // the answer is the same whether anything was removed
};

struct DeleteOutcome {
  bool auth_ok = false;
  bool visible = false;
  bool creator = false;  // visible but not the creator: 403
};

struct CollectionList {
  bool auth_ok = false;
  std::vector<CollectionRecord> items;
};

struct CollectionOutcome {
  bool auth_ok = false;
  bool found = false;    // the caller's (or made)
  bool cover_ok = true;  // the cover track given is one the caller may see
  std::optional<CollectionRecord> collection;
};

// What a collection edit is to set: a field is changed when its optional is set (to a value, or
// to nullopt inside, which clears it).
struct CollectionFields {
  std::optional<std::string> name;
  std::optional<std::optional<std::string>> description, cover_track_id, cover_image_url;
};

struct CollectionEntries {
  bool auth_ok = false;
  bool found = false;
  std::vector<CollectionEntry> items;
};

// An entry edit's verdict: "added", "present", "no_track", "removed", "absent", "reordered", or
// nullopt when the collection is not the caller's.
struct EntryOutcome {
  bool auth_ok = false;
  std::optional<std::string> verdict;
};

struct DeletedOutcome {
  bool auth_ok = false;
  bool found = false;
};

struct ShareOutcome {
  bool auth_ok = false;
  std::optional<ShareLink> link;  // nullopt: not a live track the caller created
};

// A live share link found by its token (no caller involved).
struct ResolvedShare {
  std::string link_id, org_id, target_type, visibility;
  std::optional<int64_t> expires_at;
  bool track_deleted = false;
  TrackPage track;  // one row
  std::optional<std::string> master_file;
};

struct SharedSaveOutcome {
  bool auth_ok = false;
  std::optional<LibraryEntry> entry;
  std::string track_id;
  std::optional<std::string> share_link_id;
};

// A write sent with an Idempotency-Key (IETF httpapi draft): BeginIdempotent either finds the
// first request's stored answer, finds that request still running, or opens a transaction on the
// write session, holding the key, that the route's own write then joins; FinishIdempotent stores
// the answer in that transaction and commits, so the answer exists exactly when the write does.
struct IdempotencyClaim {
  enum class State { kStarted, kReplay, kInUse };
  State state = State::kStarted;
  bool same_request = true;  // kReplay: the stored request's fingerprint is this one's
  int status = 0;            // kReplay: the stored answer
  std::string body;
};

class OverdueGuard;

// What a worker's database layer needs from the configuration.
struct DatabaseSettings {
  std::string read_conninfo;   // may name several hosts; replicas preferred
  std::string write_conninfo;  // the primary: where a stale replica's reads go instead
  ConnectionOptions options;
  int statement_timeout_ms = 0;
  int max_replica_lag_seconds = 0;
  // Per-user quotas the creates enforce in their own statement (db/library.cpp, 010_quotas.sql).
  int max_collections_per_user = 0;
  int max_share_links_per_user = 0;
};

class Database {
 public:
  explicit Database(const DatabaseSettings& settings);
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  // Each call maps a database failure to 503 (unreachable, timed out) or 500 (anything else)
  // and logs the raw error with `trace_id`; nothing internal reaches the client.
  // `on_primary`: ask the primary, never a replica (a write's own check disagreed with a replica's).
  Result<std::optional<KeyRecord>> FindKey(std::string_view key_id, std::string_view org_id, std::string_view trace_id,
                                           bool on_primary = false);
  // The page, with the statement's own check of the caller and of the collection.
  // `params.limit` + 1 rows are fetched: more than `limit` means a next page exists.
  Result<Listing> ListTracks(const CheckedCaller& caller, const ListParams& params, std::string_view trace_id);
  Result<TrackDetail> GetTrack(const CheckedCaller& caller, std::string_view track_id, std::string_view trace_id);
  // Writes go to the primary (the write connection string). Each is idempotent, so a write whose
  // session broke is retried once, like a read.
  Result<SaveOutcome> SaveTrack(const CheckedCaller& caller, std::string_view track_id, std::string_view trace_id);
  Result<UnsaveOutcome> UnsaveTrack(const CheckedCaller& caller, std::string_view track_id, std::string_view trace_id);
  Result<DeleteOutcome> DeleteTrack(const CheckedCaller& caller, std::string_view track_id, std::string_view trace_id);

  // Collections (db/library.cpp): reads of the caller's own, edits on the primary.
  Result<CollectionList> ListCollections(const CheckedCaller& caller, int limit, int64_t offset,
                                         std::string_view trace_id);
  Result<CollectionOutcome> GetCollection(const CheckedCaller& caller, std::string_view collection_id,
                                          std::string_view trace_id);
  Result<CollectionOutcome> CreateCollection(const CheckedCaller& caller, std::string_view new_id,
                                             const CollectionFields& fields, std::string_view trace_id);
  Result<CollectionOutcome> UpdateCollection(const CheckedCaller& caller, std::string_view collection_id,
                                             const CollectionFields& fields, std::string_view trace_id);
  Result<DeletedOutcome> DeleteCollection(const CheckedCaller& caller, std::string_view collection_id,
                                          std::string_view trace_id);
  Result<CollectionEntries> ListCollectionEntries(const CheckedCaller& caller, std::string_view collection_id,
                                                  int limit, int64_t offset, std::string_view trace_id);
  Result<EntryOutcome> AddToCollection(const CheckedCaller& caller, std::string_view collection_id,
                                       std::string_view track_id, std::string_view trace_id);
  Result<EntryOutcome> RemoveFromCollection(const CheckedCaller& caller, std::string_view collection_id,
                                            std::string_view track_id, std::string_view trace_id);
  Result<EntryOutcome> ReorderCollection(const CheckedCaller& caller, std::string_view collection_id,
                                         const std::vector<std::string>& track_ids, std::string_view trace_id);

  // Share links (db/library.cpp). The token is only ever seen here as its keyed hash.
  Result<ShareOutcome> CreateShare(const CheckedCaller& caller, std::string_view track_id, std::string_view new_id,
                                   std::string_view token_hash, std::string_view visibility,
                                   std::optional<int> expires_in_days, std::string_view trace_id);
  Result<DeletedOutcome> RevokeShare(const CheckedCaller& caller, std::string_view share_id, std::string_view trace_id);
  Result<std::optional<ResolvedShare>> ResolveShare(std::string_view token_hash, std::string_view trace_id);
  Result<SharedSaveOutcome> SaveShared(const CheckedCaller& caller, std::string_view token_hash,
                                       std::string_view trace_id);
  // Idempotency-Key (db/idempotency.cpp). While a claim is open, writes run in its transaction and
  // are never retried on another session (the transaction would be lost): a failure rolls it back
  // and answers 503, after which the client's retry with the same key is safe.
  Result<IdempotencyClaim> BeginIdempotent(std::string_view api_key_id, std::string_view key,
                                           std::string_view fingerprint, std::string_view trace_id);
  // Stores a 2xx answer with the write and commits. An error means the outcome is not known (the
  // commit's answer was lost) or nothing was written; either way the same key may be sent again.
  Result<void> FinishIdempotent(int status, std::string_view body, std::string_view trace_id);
  // Rolls the claim's transaction back (the route failed): nothing it did is kept.
  void AbandonIdempotent();

  // No attempt starts after `deadline` (request_timeout from the start), or, once a host failed
  // during this request, after deadline + 1 s + connect_timeout: the time the dead host cost.
  // So the last attempt, at most a connect and statement_timeout + 1 s, ends within the budget
  // Config::RequestAlarmSeconds counts.
  void StartRequest(std::chrono::steady_clock::time_point deadline) {
    deadline_ = deadline;
    host_failed_ = false;
    write_outcome_unknown_ = false;
  }
  // True when authorizations cached from this database may be stale because the read session
  // was reopened (possibly on another host). Key changes on the primary reach the caches through
  // the host's listener (auth_listener.hpp), not through this session.
  bool AuthChanged();
  // One round trip, for the health check.
  Result<bool> Ping(std::string_view trace_id);
  // Database calls that failed since the worker started (for the status page).
  uint64_t failures() const { return failures_; }
  // Hands `record` how long each statement took (ms, failed ones too) since the last call, then
  // forgets them (keeping the buffer): the worker adds them to the pool's histogram per request.
  template <typename Record>
  void DrainStatementTimes(Record&& record) {
    for (double ms : statement_ms_) record(ms);
    statement_ms_.clear();
  }
  // Opens the read session now if it is not open (workers call this at start, to fail fast in logs).
  bool Connect(std::string_view trace_id);

 private:
  struct Statements;
  struct Connection;
  enum class Target { kRead, kWrite };
  // One statement of statements.hpp answering text columns (col 0 auth_ok, col 1 fresh): the
  // caller's facts bound by name, then `params` (nullopt binds NULL).
  using TextRow = std::vector<std::optional<std::string>>;
  using TextParams = std::vector<std::pair<std::string_view, std::optional<std::string>>>;
  Result<std::vector<TextRow>> Query(std::string_view what, std::string_view sql, const CheckedCaller* caller,
                                     const TextParams& params, Target target, std::string_view trace_id);
  template <typename Body>
  auto Run(std::string_view what, std::string_view trace_id, Body&& body, Target target = Target::kRead)
      -> Result<decltype(body(std::declval<Statements&>()))>;
  bool Open(Connection& c, std::string_view trace_id);
  // After a failed statement or prepare: drop that statement, and the session if it is unusable.
  void DropFailed(Connection& c, std::string_view sqlstate);

  std::unique_ptr<Connection> read_, write_;
  std::string statement_timeout_;
  int max_replica_lag_seconds_ = 0;
  int max_collections_per_user_ = 0;
  int max_share_links_per_user_ = 0;
  std::unique_ptr<OverdueGuard> overdue_;
  std::chrono::milliseconds overdue_after_;
  uint64_t failures_ = 0;
  std::vector<double> statement_ms_;
  bool auth_changed_ = true;
  std::chrono::steady_clock::time_point deadline_ = std::chrono::steady_clock::time_point::max();
  std::chrono::seconds grace_;  // 1 s + connect_timeout, after a host failed
  bool host_failed_ = false;
  std::chrono::steady_clock::time_point primary_unreachable_until_;
  struct OpenClaim {
    std::string api_key_id, key, fingerprint;
  };
  // An Idempotency-Key transaction is open on the write session.
  std::optional<OpenClaim> claim_;
  // A write's session broke after its statement was sent during this request (it may have
  // committed): set by Run, read by the creates (db/library.cpp) when no attempt answered.
  bool write_outcome_unknown_ = false;
  // Ends an open claim's transaction (ROLLBACK, or the session when it cannot), after a failure.
  void EndFailedClaim(Connection& c);
  // ROLLBACK of a transaction a failure left open on a kept session (else the session goes).
  void RollBackOpenTransaction(Connection& c);
  // A create's failure as the client must read it: WRITE_OUTCOME_UNKNOWN when, without a key, it
  // may have been made (db/library.cpp).
  ApiError CreateFailure(const ApiError& error, bool keyed) const;
};

}  // namespace music_api
