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
    "set_config('plan_cache_mode', 'force_generic_plan', false)";

// 1 when this server's data may be read: it is the primary, or a replica that replayed a commit
// less than :lag seconds ago. The writer's heartbeat (kHeartbeat) commits every second, so a
// healthy replica is never more than about a second behind by this measure; one whose replay is
// paused or stuck falls behind at once. A replica that has replayed nothing yet is not fresh.
#define MUSIC_API_SQL_FRESH                                                  \
  "CASE WHEN NOT pg_is_in_recovery() OR pg_last_xact_replay_timestamp() >= " \
  "now() - make_interval(secs => CAST(:lag AS integer)) THEN 1 ELSE 0 END"

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

// The listing, in one round trip with its own authorization check. `guard` re-checks what the
// worker's cache believes (the presented secret's hash, key neither revoked nor expired by the
// app's clock `:now`, so both sides judge expiry alike; membership with the capability) and,
// with a collection filter, that the collection is the caller's in this org (missing and foreign
// get one answer: no leak). The page query walks one index in (saved_at DESC, track_id DESC)
// order, stops after offset+limit entries and runs only when the guard holds; only the page's
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
      "FROM (SELECT " MUSIC_API_SQL_FRESH
      " AS fresh, EXISTS (SELECT 1 FROM api_keys k JOIN memberships m "
      "ON m.user_id = k.user_id AND m.org_id = :org "
      "WHERE k.id = :key AND k.secret_hash = :hash AND k.user_id = :user AND k.revoked_at IS NULL "
      "AND (k.expires_at IS NULL OR CAST(floor(extract(epoch FROM k.expires_at)) AS bigint) > :now) "
      "AND 'USE_MUSIC_GENERATION' = ANY (m.capabilities)) AS auth_ok, ";
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

#undef MUSIC_API_SQL_FRESH

}  // namespace music_api::sql
