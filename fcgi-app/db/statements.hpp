// Every SQL text the API workers run, named. Values are always bound (:name), never spliced in.
#pragma once

#include <string>
#include <string_view>

namespace music_api::sql {

// Per-session settings, bound so that even these are never string-built. Generic plans: every
// statement here is one fixed shape whose best plan does not depend on the values (index range
// scans), and under plan_cache_mode=auto PostgreSQL kept re-planning the listing on every execution,
// which cost more CPU than running it.
inline constexpr std::string_view kSessionSetup =
    "SELECT set_config('statement_timeout', :timeout, false), "
    "set_config('application_name', 'music-api', false), "
    "set_config('plan_cache_mode', 'force_generic_plan', false), "
    // A write's answer waits until the synchronous replicas have applied it, so a read that
    // follows it at once on such a replica sees it (docs/scaling.md, read-your-writes). Without
    // synchronous replicas (one server) this is an ordinary local commit.
    "set_config('synchronous_commit', 'remote_apply', false)";

// 1 when this server's data may be read: it is the primary, or a replica that replayed a commit
// less than :lag seconds ago. The writer's heartbeat (kHeartbeat) commits every second, so a
// healthy replica is never more than about a second behind by this measure; one whose replay is
// paused or stuck falls behind at once. A replica that has replayed nothing yet is not fresh.
#define MUSIC_API_SQL_FRESH                                                  \
  "CASE WHEN NOT pg_is_in_recovery() OR pg_last_xact_replay_timestamp() >= " \
  "now() - make_interval(secs => CAST(:lag AS integer)) THEN 1 ELSE 0 END"

// Every statement that answers a caller re-checks, in its own round trip, what the worker's cache
// believes: the presented secret's hash, the key neither revoked nor expired by the app's clock
// `:now` (so both sides judge expiry alike), membership of :org with the capability. A change
// not yet notified to the cache is caught here, and the statement touches nothing unless it holds.
#define MUSIC_API_SQL_CALLER_OK                                                                       \
  "EXISTS (SELECT 1 FROM api_keys k JOIN memberships m ON m.user_id = k.user_id AND m.org_id = :org " \
  "WHERE k.id = :key AND k.secret_hash = :hash AND k.user_id = :user AND k.revoked_at IS NULL "       \
  "AND (k.expires_at IS NULL OR CAST(floor(extract(epoch FROM k.expires_at)) AS bigint) > :now) "     \
  "AND 'USE_MUSIC_GENERATION' = ANY (m.capabilities))"

// A track the caller may see in :org: not deleted, and created by them or in their library.
#define MUSIC_API_SQL_TRACK_VISIBLE(t)                                                             \
  t ".id = :track AND " t ".org_id = :org AND " t ".deleted_at IS NULL AND (" t                    \
    ".creator_user_id = :user OR EXISTS (SELECT 1 FROM library_saves vs WHERE vs.user_id = :user " \
    "AND vs.track_id = " t ".id))"

// The key row and, in the same round trip, the caller's membership in the requested org, and
// whether the server is fresh enough to believe. One row always: a NULL hash means no such key.
inline constexpr std::string_view kFindKey =
    "SELECT " MUSIC_API_SQL_FRESH
    ", k.secret_hash, k.user_id, "
    "CASE WHEN k.revoked_at IS NULL THEN 0 ELSE 1 END, "
    "CAST(floor(extract(epoch FROM k.expires_at)) AS bigint), "
    "CASE WHEN m.user_id IS NULL THEN 0 ELSE 1 END, "
    "CASE WHEN 'USE_MUSIC_GENERATION' = ANY (m.capabilities) THEN 1 ELSE 0 END "
    "FROM (SELECT 1) one LEFT JOIN api_keys k ON k.id = :key "
    "LEFT JOIN memberships m ON m.user_id = k.user_id AND m.org_id = :org";

// Committed every second by each host's listener, on the primary: its commits are what tells a
// replica's readers how far behind it is (MUSIC_API_SQL_FRESH). 006_heartbeat.sql: the one write
// the API role may make, through a function.
inline constexpr std::string_view kHeartbeat = "SELECT music_api_heartbeat()";

inline constexpr std::string_view kPing = "SELECT 1";
inline constexpr std::string_view kListenAuthChanges = "LISTEN music_api_auth";  // on the primary only
inline constexpr std::string_view kAuthChannel = "music_api_auth";

// The listing, in one round trip with its own authorization check (`guard`: the caller, and,
// with a collection filter, that the collection is the caller's in this org (missing and foreign
// get one answer: no leak). The page query walks one index in (saved_at DESC, track_id DESC)
// order, stops after offset+limit entries (the caller asks for one row more than the page, to
// know whether a next page exists) and runs only when the guard holds; only the page's
// rows are joined to tracks. LEFT JOINs keep one row (with a NULL id) for an empty page. `fresh`
// does not gate the page: a lagging replica's page is still the answer when no primary answers.
struct ListingFilters {
  bool mode = false;
  bool engine = false;
  bool collection = false;
  int Index() const { return (mode ? 1 : 0) | (engine ? 2 : 0) | (collection ? 4 : 0); }
};
inline constexpr int kListingVariants = 8;

inline std::string ListingQuery(ListingFilters filters) {
  std::string q =
      "SELECT guard.fresh, CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, "
      "CASE WHEN guard.collection_ok THEN 1 ELSE 0 END, "
      "t.id, t.title, coalesce(t.engine, ''), coalesce(t.mode, ''), t.measured_duration_seconds, "
      "CASE WHEN t.instrumental THEN 1 ELSE 0 END, coalesce(t.licence_class, ''), "
      "coalesce(CAST(floor(extract(epoch FROM t.created_at)) AS bigint), 0) "
      "FROM (SELECT " MUSIC_API_SQL_FRESH " AS fresh, " MUSIC_API_SQL_CALLER_OK " AS auth_ok, ";
  q += filters.collection ? "EXISTS (SELECT 1 FROM collections c WHERE c.id = :collection AND c.org_id = :org "
                            "AND c.user_id = :user) AS collection_ok) guard "
                          : "true AS collection_ok) guard ";
  if (filters.collection) {
    // Collection entries carry the owner's saved_at (004_collection_saved_at.sql): NULL means
    // "in the collection, not saved", which is not listed. The guard made sure the owner is the
    // caller; mode and engine come from the track.
    q += "LEFT JOIN LATERAL (SELECT ct.track_id, ct.saved_at FROM collection_tracks ct "
         "WHERE guard.auth_ok AND guard.collection_ok AND ct.collection_id = :collection "
         "AND ct.saved_at IS NOT NULL ";
    // The filters are a scalar subquery per entry (one probe of tracks' key), never a join: as a
    // join the generic plan may hash all of tracks and sort, instead of walking the page index in
    // order and stopping after offset+limit entries (music-admin explain; test_consistency.py).
    if (filters.mode || filters.engine) {
      q += "AND (SELECT ";
      if (filters.mode) q += "ft.mode = :mode ";
      if (filters.mode && filters.engine) q += "AND ";
      if (filters.engine) q += "ft.engine = :engine ";
      q += "FROM tracks ft WHERE ft.id = ct.track_id) ";
    }
    q += "ORDER BY ct.saved_at DESC, ct.track_id DESC ";
  } else {
    q += "LEFT JOIN LATERAL (SELECT s.track_id, s.saved_at FROM library_saves s "
         "WHERE guard.auth_ok AND s.user_id = :user AND s.org_id = :org ";
    if (filters.mode) q += "AND s.mode = :mode ";
    if (filters.engine) q += "AND s.engine = :engine ";
    q += "ORDER BY s.saved_at DESC, s.track_id DESC ";
  }
  q += "LIMIT :limit OFFSET :offset) page ON true "
       "LEFT JOIN tracks t ON t.id = page.track_id "
       "ORDER BY page.saved_at DESC, page.track_id DESC";
  return q;
}

// One track and its stored files (one row per file, master first; one row with NULL file
// columns when it has none; one row with a NULL id when the caller may not see it).
inline constexpr std::string_view kGetTrack =
    "SELECT guard.fresh, CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, "
    "t.id, t.title, coalesce(t.engine, ''), coalesce(t.mode, ''), t.measured_duration_seconds, "
    "CASE WHEN t.instrumental THEN 1 ELSE 0 END, coalesce(t.licence_class, ''), "
    "coalesce(CAST(floor(extract(epoch FROM t.created_at)) AS bigint), 0), "
    "m.name, m.file_name "
    "FROM (SELECT " MUSIC_API_SQL_FRESH " AS fresh, " MUSIC_API_SQL_CALLER_OK " AS auth_ok) guard "
    "LEFT JOIN tracks t ON guard.auth_ok AND " MUSIC_API_SQL_TRACK_VISIBLE("t") " "
    "LEFT JOIN track_media m ON m.track_id = t.id "
    "ORDER BY m.is_master DESC, m.name LIMIT 65";
inline constexpr int kMaxMediaRows = 64;  // a master and up to 63 stems (music-admin refuses more)

// Save, on the primary. The track row is share-locked first, so a save racing the track's delete
// either commits before it (and the delete's trigger removes it) or sees the track deleted. Only
// the caller's own track can be added here (source `own`); one already in the library is answered
// with its existing entry. Two saves at once: the second's INSERT waits for the first and does
// nothing, and its answer comes from the second run of this statement (Database::SaveTrack).
// Columns: auth_ok, visible, entry id, source, created_at (epoch seconds).
inline constexpr std::string_view kSaveTrack =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK " AS auth_ok), "
    "t AS (SELECT t.id, t.org_id, t.mode, t.engine, t.creator_user_id FROM tracks t, guard "
    "WHERE guard.auth_ok AND " MUSIC_API_SQL_TRACK_VISIBLE("t") " FOR SHARE OF t), "
    "existing AS (SELECT s.id, s.source, s.saved_at FROM library_saves s JOIN t ON s.track_id = t.id "
    "WHERE s.user_id = :user), "
    "added AS (INSERT INTO library_saves (user_id, track_id, org_id, mode, engine, source) "
    "SELECT :user, t.id, t.org_id, t.mode, t.engine, 'own' FROM t "
    "WHERE t.creator_user_id = :user AND NOT EXISTS (SELECT 1 FROM existing) "
    "ON CONFLICT (user_id, track_id) DO NOTHING RETURNING id, source, saved_at), "
    "entry AS (SELECT id, source, saved_at FROM added UNION ALL SELECT id, source, saved_at FROM existing) "
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, "
    "CASE WHEN EXISTS (SELECT 1 FROM t) THEN 1 ELSE 0 END, "
    "e.id, e.source, CAST(floor(extract(epoch FROM e.saved_at)) AS bigint) "
    "FROM guard LEFT JOIN (SELECT * FROM entry LIMIT 1) e ON true";

// Unsave, on the primary: idempotent, and the same answer whether or not the track was saved or
// exists (nothing to learn from it). Columns: auth_ok.
inline constexpr std::string_view kUnsaveTrack =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK
    " AS auth_ok), "
    "removed AS (DELETE FROM library_saves s USING guard "
    "WHERE guard.auth_ok AND s.user_id = :user AND s.track_id = :track AND s.org_id = :org RETURNING 1) "
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, (SELECT count(*) FROM removed) FROM guard";

// Soft delete, on the primary, by the creator only: the track row is locked, so two deletes (or a
// delete and a save) are ordered. Columns: auth_ok, visible, is creator, deleted now.
inline constexpr std::string_view kDeleteTrack =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK " AS auth_ok), "
    "t AS (SELECT t.id, t.creator_user_id FROM tracks t, guard "
    "WHERE guard.auth_ok AND " MUSIC_API_SQL_TRACK_VISIBLE("t") " FOR UPDATE OF t), "
    "deleted AS (UPDATE tracks SET deleted_at = now() FROM t "
    "WHERE tracks.id = t.id AND t.creator_user_id = :user RETURNING 1) "
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, "
    "CASE WHEN EXISTS (SELECT 1 FROM t) THEN 1 ELSE 0 END, "
    "CASE WHEN EXISTS (SELECT 1 FROM t WHERE t.creator_user_id = :user) THEN 1 ELSE 0 END, "
    "(SELECT count(*) FROM deleted) FROM guard";

#undef MUSIC_API_SQL_FRESH
#undef MUSIC_API_SQL_CALLER_OK
#undef MUSIC_API_SQL_TRACK_VISIBLE

}  // namespace music_api::sql
