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

// Idempotency-Key (009_idempotency.sql), each in the transaction the claim opens on the primary.
// The key is held by a transaction-scoped advisory lock (in a space of its own: the two-int form,
// class 0x4d41494b) until the first request's answer commits with its write: a repeat meanwhile
// does not wait for it but is told to retry. A hash collision only makes two keys queue alike.
inline constexpr std::string_view kIdempotencyLock =
    "SELECT CASE WHEN pg_try_advisory_xact_lock(1296124235, hashtext(:key_id || ' ' || :key)) THEN 1 ELSE 0 END";
// The stored answer, read after the lock is held (a statement of its own: a fresh snapshot, which
// sees the first request's commit). Older than 24 h counts as gone (the prune may lag).
inline constexpr std::string_view kIdempotencyFind =
    "SELECT fingerprint, CAST(status AS integer), body FROM idempotency_keys WHERE api_key_id = :key_id "
    "AND key = :key AND created_at > now() - interval '24 hours'";
inline constexpr std::string_view kIdempotencyStore =
    "SELECT music_idempotency_store(:key_id, :key, :fingerprint, CAST(:status AS integer), :body)";
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
// delete and a save) are ordered. A track its creator already deleted answers them as if visible
// (a repeated delete, e.g. a retry, gets the same 200); to anyone else it is the one 404.
// Columns: auth_ok, visible, is creator, deleted now.
inline constexpr std::string_view kDeleteTrack =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK " AS auth_ok), "
    "t AS (SELECT t.id, t.creator_user_id FROM tracks t, guard "
    "WHERE guard.auth_ok AND " MUSIC_API_SQL_TRACK_VISIBLE("t") " FOR UPDATE OF t), "
    "deleted AS (UPDATE tracks SET deleted_at = now() FROM t "
    "WHERE tracks.id = t.id AND t.creator_user_id = :user RETURNING 1), "
    "before AS (SELECT 1 FROM tracks b, guard WHERE guard.auth_ok AND b.id = :track AND b.org_id = :org "
    "AND b.deleted_at IS NOT NULL AND b.creator_user_id = :user) "
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, "
    "CASE WHEN EXISTS (SELECT 1 FROM t) OR EXISTS (SELECT 1 FROM before) THEN 1 ELSE 0 END, "
    "CASE WHEN EXISTS (SELECT 1 FROM t WHERE t.creator_user_id = :user) OR EXISTS (SELECT 1 FROM before) "
    "THEN 1 ELSE 0 END, "
    "(SELECT count(*) FROM deleted) FROM guard";

// ------------------------------------------------------------------ collections and share links
// These answer as text columns (Database::TextRows): col 0 is the caller check (auth_ok, 1/0),
// col 1 the server's freshness (MUSIC_API_SQL_FRESH, or 1 on the primary), then the data. The
// timestamps are epoch seconds. Numbers are bound as text and cast, so every bind is a string.
#define MUSIC_API_SQL_EPOCH(column) "CAST(floor(extract(epoch FROM " column ")) AS bigint)"
#define MUSIC_API_SQL_COLLECTION_COLUMNS(c, count)                                            \
  c ".id, " c ".name, " c ".description, " c ".cover_track_id, " c ".cover_image_url, " count \
    ", " MUSIC_API_SQL_EPOCH(c ".created_at") ", " MUSIC_API_SQL_EPOCH(c ".updated_at")
#define MUSIC_API_SQL_OWNED "c.id = :collection AND c.user_id = :user AND c.org_id = :org"

// The caller's collections in :org, newest first. One row with NULL columns for an empty page.
inline constexpr std::string_view kListCollections =
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, guard.fresh, "
    MUSIC_API_SQL_COLLECTION_COLUMNS("c", "NULL") " "
    "FROM (SELECT " MUSIC_API_SQL_FRESH " AS fresh, " MUSIC_API_SQL_CALLER_OK " AS auth_ok) guard "
    "LEFT JOIN LATERAL (SELECT * FROM collections c WHERE guard.auth_ok AND c.user_id = :user AND c.org_id = :org "
    "ORDER BY c.created_at DESC, c.id DESC LIMIT CAST(:limit AS integer) OFFSET CAST(:offset AS bigint)) c ON true "
    "ORDER BY c.created_at DESC, c.id DESC";

// One collection of the caller's, with its entry count (NULL id: not the caller's).
inline constexpr std::string_view kGetCollection =
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, guard.fresh, "
    MUSIC_API_SQL_COLLECTION_COLUMNS("c", "(SELECT count(*) FROM collection_tracks x WHERE x.collection_id = c.id)") " "
    "FROM (SELECT " MUSIC_API_SQL_FRESH " AS fresh, " MUSIC_API_SQL_CALLER_OK " AS auth_ok) guard "
    "LEFT JOIN collections c ON guard.auth_ok AND " MUSIC_API_SQL_OWNED;

// A collection's entries in order. Columns after the two: owned, track_id, position, added_at.
inline constexpr std::string_view kCollectionEntries =
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, guard.fresh, CASE WHEN guard.owned THEN 1 ELSE 0 END, "
    "e.track_id, e.position, " MUSIC_API_SQL_EPOCH("e.added_at") " "
    "FROM (SELECT " MUSIC_API_SQL_FRESH " AS fresh, " MUSIC_API_SQL_CALLER_OK " AS auth_ok, "
    "EXISTS (SELECT 1 FROM collections c WHERE " MUSIC_API_SQL_OWNED ") AS owned) guard "
    "LEFT JOIN LATERAL (SELECT ct.track_id, ct.position, ct.added_at FROM collection_tracks ct "
    "WHERE guard.auth_ok AND guard.owned AND ct.collection_id = :collection ORDER BY ct.position "
    "LIMIT CAST(:limit AS integer) OFFSET CAST(:offset AS bigint)) e ON true ORDER BY e.position";

// The cover, when one is given (:track), must be a track the caller may see in :org.
#define MUSIC_API_SQL_COVER_OK \
  "(CAST(:track AS text) IS NULL OR EXISTS (SELECT 1 FROM tracks t WHERE " MUSIC_API_SQL_TRACK_VISIBLE("t") "))"

// The per-user quota (010_quotas.sql), asked only when the create would otherwise be made: the
// function locks the user's quota and counts in a fresh snapshot, so concurrent creates of one
// user queue there and each sees the others' commits. NULL (not asked) counts as room.
#define MUSIC_API_SQL_QUOTA_ROOM(kind, id, when)                                    \
  "room AS (SELECT CASE WHEN " when " THEN music_quota_room('" kind "', :user, " id \
  ", CAST(:quota AS integer)) END AS ok)"

// Create, on the primary. Columns after the two: cover_ok, room (0: over max_collections_per_user),
// then the collection (NULL id when not made).
inline constexpr std::string_view kCreateCollection =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK " AS auth_ok, " MUSIC_API_SQL_COVER_OK
    " AS cover_ok), "
    // The worker's retry after a broken session sends the same new id: if the first attempt
    // committed, its row is the answer (never a unique violation, never a second collection).
    "earlier AS (SELECT c.* FROM collections c, guard WHERE guard.auth_ok AND " MUSIC_API_SQL_OWNED
    "), " MUSIC_API_SQL_QUOTA_ROOM(
        "collections", ":collection",
        "(SELECT auth_ok AND cover_ok FROM guard) AND NOT EXISTS (SELECT 1 FROM earlier)") ", "
    "made AS (INSERT INTO collections (id, org_id, user_id, name, description, cover_track_id, cover_image_url) "
    "SELECT :collection, :org, :user, :name, :description, :track, :image FROM guard, room "
    "WHERE guard.auth_ok AND guard.cover_ok AND room.ok ON CONFLICT (id) DO NOTHING RETURNING *), "
    "answer AS (SELECT * FROM made UNION ALL SELECT * FROM earlier LIMIT 1) "
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, 1, CASE WHEN guard.cover_ok OR EXISTS (SELECT 1 FROM earlier) "
    "THEN 1 ELSE 0 END, CASE WHEN room.ok IS FALSE THEN 0 ELSE 1 END, " MUSIC_API_SQL_COLLECTION_COLUMNS(
        "c", "0") " FROM guard CROSS JOIN room LEFT JOIN answer c ON true";

// Edit, on the primary: each :set_* ('1' or '0') says whether that field is changed (to the bound
// value, NULL clearing it). Columns after the two: owned, cover_ok, then the collection.
inline constexpr std::string_view kUpdateCollection =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK " AS auth_ok, "
    "(:set_cover = '0' OR " MUSIC_API_SQL_COVER_OK ") AS cover_ok, "
    "EXISTS (SELECT 1 FROM collections c WHERE " MUSIC_API_SQL_OWNED ") AS owned), "
    "changed AS (UPDATE collections c SET "
    "name = CASE WHEN :set_name = '1' THEN CAST(:name AS text) ELSE c.name END, "
    "description = CASE WHEN :set_description = '1' THEN CAST(:description AS text) ELSE c.description END, "
    "cover_track_id = CASE WHEN :set_cover = '1' THEN CAST(:track AS text) ELSE c.cover_track_id END, "
    "cover_image_url = CASE WHEN :set_image = '1' THEN CAST(:image AS text) ELSE c.cover_image_url END, "
    "updated_at = now() FROM guard WHERE guard.auth_ok AND guard.cover_ok AND " MUSIC_API_SQL_OWNED
    " RETURNING c.*) "
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, 1, CASE WHEN guard.owned THEN 1 ELSE 0 END, "
    "CASE WHEN guard.cover_ok THEN 1 ELSE 0 END, "
    MUSIC_API_SQL_COLLECTION_COLUMNS("c", "(SELECT count(*) FROM collection_tracks x WHERE x.collection_id = c.id)")
    " FROM guard LEFT JOIN changed c ON true";

// Delete, on the primary (its entries and share links go with it), leaving a tombstone (a trigger,
// 009_idempotency.sql): a repeated
// delete by its owner (a retry) finds it and answers the same 200; anyone else finds nothing.
// Columns after the two: deleted now or before by this caller (0 or more).
inline constexpr std::string_view kDeleteCollection =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK
    " AS auth_ok), "
    "gone AS (DELETE FROM collections c USING guard WHERE guard.auth_ok AND " MUSIC_API_SQL_OWNED
    " RETURNING 1), "
    "before AS (SELECT 1 FROM deleted_collections d, guard WHERE guard.auth_ok AND d.id = :collection "
    "AND d.user_id = :user AND d.org_id = :org) "
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, 1, "
    "(SELECT count(*) FROM gone) + (SELECT count(*) FROM before) FROM guard";

// The entry edits, on the primary, each one call of a function of 008_collections_shares.sql that
// locks the collection first. Columns after the two: its verdict (NULL: not the caller's).
inline constexpr std::string_view kCollectionAdd =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK
    " AS auth_ok) SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, "
    "1, CASE WHEN guard.auth_ok THEN music_collection_add(:collection, :user, :org, :track) END FROM guard";
inline constexpr std::string_view kCollectionRemove =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK
    " AS auth_ok) SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, "
    "1, CASE WHEN guard.auth_ok THEN music_collection_remove(:collection, :user, :org, :track) END FROM guard";
// :ids is the listed track ids joined by commas (ids never contain one).
inline constexpr std::string_view kCollectionReorder =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK
    " AS auth_ok) SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, "
    "1, CASE WHEN guard.auth_ok THEN music_collection_reorder(:collection, :user, :org, "
    "CASE WHEN :ids = '' THEN CAST(ARRAY[] AS text[]) ELSE string_to_array(:ids, ',') END) END FROM guard";

// A share link for a track the caller created, on the primary. :days NULL: never expires.
// Columns after the two: room (0: over max_share_links_per_user), id, visibility, expires_at,
// created_at (NULL id: not the caller's track, or no room).
inline constexpr std::string_view kCreateShare =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK
    " AS auth_ok), "
    "t AS (SELECT t.id FROM tracks t, guard WHERE guard.auth_ok AND t.id = :track AND t.org_id = :org "
    "AND t.deleted_at IS NULL AND t.creator_user_id = :user), "
    // The worker's retry with the same id and token: the link its first attempt made.
    "earlier AS (SELECT s.* FROM share_links s, guard WHERE guard.auth_ok AND s.id = :share "
    "AND s.token_hash = :token_hash AND s.creator_user_id = :user AND s.org_id = :org), "
    // Only for a track the caller may share: anyone else gets the missing track's 404, whatever
    // their own count.
    MUSIC_API_SQL_QUOTA_ROOM("share_links", ":share",
                             "EXISTS (SELECT 1 FROM t) AND NOT EXISTS (SELECT 1 FROM earlier)") ", "
    "made AS (INSERT INTO share_links (id, token_hash, org_id, creator_user_id, target_type, track_id, visibility, "
    "expires_at) SELECT :share, :token_hash, :org, :user, 'track', t.id, :visibility, "
    "date_trunc('second', now() + make_interval(days => CAST(:days AS integer))) FROM t, room WHERE room.ok "
    "ON CONFLICT DO NOTHING RETURNING *), "
    "answer AS (SELECT * FROM made UNION ALL SELECT * FROM earlier LIMIT 1) "
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, 1, CASE WHEN room.ok IS FALSE THEN 0 ELSE 1 END, s.id, "
    "s.visibility, " MUSIC_API_SQL_EPOCH("s.expires_at") ", " MUSIC_API_SQL_EPOCH(
        "s.created_at") " FROM guard CROSS JOIN room LEFT JOIN answer s ON true";

// Revoke, on the primary, by its creator; again is no change. Columns after the two: found.
inline constexpr std::string_view kRevokeShare =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK
    " AS auth_ok), "
    "s AS (UPDATE share_links s SET revoked_at = coalesce(s.revoked_at, now()) FROM guard WHERE guard.auth_ok "
    "AND s.id = :share AND s.creator_user_id = :user AND s.org_id = :org RETURNING 1) "
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, 1, (SELECT count(*) FROM s) FROM guard";

// A share link by its token's keyed hash: live links only, so unknown, revoked and expired are the
// same no-row answer of the same statement. No caller (col 0 is 1). Columns after the two: link id,
// org, target type, visibility, expires_at, track id, track deleted (1/0), title, engine, mode,
// duration, instrumental (1/0), licence_class, the master's file name.
inline constexpr std::string_view kResolveShare =
    "SELECT 1, guard.fresh, s.id, s.org_id, s.target_type, s.visibility, " MUSIC_API_SQL_EPOCH("s.expires_at") ", "
    "t.id, CASE WHEN t.deleted_at IS NULL THEN 0 ELSE 1 END, t.title, t.engine, t.mode, "
    "CAST(t.measured_duration_seconds AS text), CASE WHEN t.instrumental THEN 1 ELSE 0 END, t.licence_class, "
    "m.file_name "
    "FROM (SELECT " MUSIC_API_SQL_FRESH " AS fresh) guard "
    "LEFT JOIN share_links s ON s.token_hash = :token_hash AND s.revoked_at IS NULL "
    "AND (s.expires_at IS NULL OR s.expires_at > now()) "
    "LEFT JOIN tracks t ON t.id = s.track_id "
    "LEFT JOIN track_media m ON m.track_id = t.id AND m.name = 'master'";

// Save a shared track into the caller's library in the link's org, on the primary; like kSaveTrack,
// an entry the caller already has is the answer. The track's creator saving their own link gets an
// `own` entry, like the save route. The last column counts the live track (a save racing another
// answers no entry while the track lives: Database::SaveShared runs it again). Columns after the two: entry id, track
// id, source, share_link_id, created_at (NULL id: the link or its track is gone).
inline constexpr std::string_view kSaveShared =
    "WITH guard AS (SELECT " MUSIC_API_SQL_CALLER_OK
    " AS auth_ok), "
    "s AS (SELECT s.id, s.track_id FROM share_links s, guard WHERE guard.auth_ok AND s.token_hash = :token_hash "
    "AND s.org_id = :org AND s.target_type = 'track' AND s.revoked_at IS NULL "
    "AND (s.expires_at IS NULL OR s.expires_at > now())), "
    "t AS (SELECT t.id, t.org_id, t.mode, t.engine, s.id AS link, t.creator_user_id = :user AS own "
    "FROM tracks t JOIN s ON t.id = s.track_id WHERE t.deleted_at IS NULL FOR SHARE OF t), "
    "existing AS (SELECT l.id, l.track_id, l.source, l.share_link_id, l.saved_at FROM library_saves l "
    "JOIN t ON l.track_id = t.id WHERE l.user_id = :user), "
    "added AS (INSERT INTO library_saves (user_id, track_id, org_id, mode, engine, source, share_link_id) "
    "SELECT :user, t.id, t.org_id, t.mode, t.engine, CASE WHEN t.own THEN 'own' ELSE 'shared' END, "
    "CASE WHEN t.own THEN NULL ELSE t.link END FROM t WHERE NOT EXISTS (SELECT 1 FROM existing) "
    "ON CONFLICT (user_id, track_id) DO NOTHING RETURNING id, track_id, source, share_link_id, saved_at), "
    "entry AS (SELECT * FROM added UNION ALL SELECT * FROM existing) "
    "SELECT CASE WHEN guard.auth_ok THEN 1 ELSE 0 END, 1, e.id, e.track_id, e.source, "
    "e.share_link_id, " MUSIC_API_SQL_EPOCH("e.saved_at") ", (SELECT count(*) FROM t) "
    "FROM guard LEFT JOIN (SELECT * FROM entry LIMIT 1) e ON true";

#undef MUSIC_API_SQL_EPOCH
#undef MUSIC_API_SQL_COLLECTION_COLUMNS
#undef MUSIC_API_SQL_OWNED
#undef MUSIC_API_SQL_COVER_OK
#undef MUSIC_API_SQL_QUOTA_ROOM

#undef MUSIC_API_SQL_FRESH
#undef MUSIC_API_SQL_CALLER_OK
#undef MUSIC_API_SQL_TRACK_VISIBLE

}  // namespace music_api::sql
