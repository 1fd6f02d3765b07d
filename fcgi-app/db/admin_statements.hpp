// Every SQL text music-admin runs, named (the API's own are in statements.hpp). Values are bound.
#pragma once

#include <string_view>

namespace music_api::sql::admin {

// Migrations: serialized by an advisory lock so two `migrate` runs cannot interleave.
inline constexpr std::string_view kCreateMigrationsTable =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())";
inline constexpr std::string_view kQuietNotices = "SET client_min_messages = warning";
inline constexpr std::string_view kBegin = "BEGIN";
inline constexpr std::string_view kCommit = "COMMIT";
inline constexpr std::string_view kRollback = "ROLLBACK";
inline constexpr std::string_view kMigrationLock = "SELECT pg_advisory_xact_lock(2024061801)";
inline constexpr std::string_view kMigrationApplied = "SELECT count(*) FROM schema_migrations WHERE version = $1";
inline constexpr std::string_view kRecordMigration = "INSERT INTO schema_migrations (version) VALUES ($1)";

inline constexpr std::string_view kInsertOrganization = "INSERT INTO organizations (id, name) VALUES (:id, :name)";
inline constexpr std::string_view kInsertUser = "INSERT INTO users (id, email) VALUES (:id, :email)";
// Adding an existing member adds the new capabilities to the ones it has.
inline constexpr std::string_view kAddMember =
    "INSERT INTO memberships (user_id, org_id, capabilities) "
    "VALUES (:user, :org, string_to_array(:caps, ',')) "
    "ON CONFLICT (user_id, org_id) DO UPDATE SET capabilities = "
    "ARRAY(SELECT DISTINCT c FROM unnest(memberships.capabilities || EXCLUDED.capabilities) AS c ORDER BY c)";
inline constexpr std::string_view kRemoveMember = "DELETE FROM memberships WHERE org_id = :org AND user_id = :user";
inline constexpr std::string_view kInsertKey =
    "INSERT INTO api_keys (id, user_id, secret_hash, expires_at) "
    "VALUES (:id, :user, :hash, CAST(:expires AS timestamptz))";
inline constexpr std::string_view kRevokeKey =
    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now()) WHERE id = :id";
// The creator, when given, must be a member of the track's organization (checked by the statement).
inline constexpr std::string_view kInsertTrack =
    "INSERT INTO tracks (id, org_id, title, engine, mode, measured_duration_seconds, instrumental, licence_class, "
    "created_at, creator_user_id) SELECT :id, :org, :title, :engine, :mode, CAST(:duration AS double precision), "
    "CAST(:instrumental AS boolean), :licence, coalesce(CAST(:created AS timestamptz), now()), "
    "CAST(:creator AS text) "
    "WHERE CAST(:creator AS text) IS NULL OR EXISTS (SELECT 1 FROM memberships m WHERE m.user_id = :creator "
    "AND m.org_id = :org)";
// One stored file of a track; storing it again (a new import) replaces the row. Answers the file
// name the row had before, if any (a different extension leaves an old file to remove).
inline constexpr std::string_view kPreviousMediaFile =
    "SELECT file_name FROM track_media WHERE track_id = :track AND name = :name";
inline constexpr std::string_view kUpsertMedia =
    "INSERT INTO track_media (track_id, name, file_name, mime_type, size_bytes, sha256) "
    "VALUES (:track, :name, :file, :mime, :size, :sha) "
    "ON CONFLICT (track_id, name) DO UPDATE SET file_name = EXCLUDED.file_name, mime_type = EXCLUDED.mime_type, "
    "size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256, stored_at = now()";
inline constexpr std::string_view kCountStems =
    "SELECT count(*) FROM track_media WHERE track_id = :track AND name <> 'master'";
inline constexpr std::string_view kTrackExists = "SELECT count(*) FROM tracks WHERE id = :id";
inline constexpr std::string_view kTrackOrganization = "SELECT org_id FROM tracks WHERE id = :id";
inline constexpr std::string_view kCollectionOrganization = "SELECT org_id FROM collections WHERE id = :id";
// Saving again keeps the first saved_at: DO NOTHING, not DO UPDATE.
inline constexpr std::string_view kSaveTrack =
    "INSERT INTO library_saves (user_id, track_id, org_id, mode, engine, saved_at) "
    "SELECT :user, t.id, t.org_id, t.mode, t.engine, coalesce(CAST(:saved AS timestamptz), now()) "
    "FROM tracks t WHERE t.id = :track AND t.org_id = :org "
    "ON CONFLICT (user_id, track_id) DO NOTHING";
inline constexpr std::string_view kUnsaveTrack =
    "DELETE FROM library_saves WHERE org_id = :org AND user_id = :user AND track_id = :track";
inline constexpr std::string_view kInsertCollection =
    "INSERT INTO collections (id, org_id, user_id, name) VALUES (:id, :org, :user, :name)";
// At the end of the collection, under the collection's row lock (008_collections_shares.sql):
// the owner's access is not required here (the owner's tool), the track's organization is.
inline constexpr std::string_view kCollectionLock =
    "SELECT count(*) FROM (SELECT 1 FROM collections WHERE id = "
    ":collection FOR NO KEY UPDATE) locked";
inline constexpr std::string_view kCollectionAdd =
    "INSERT INTO collection_tracks (collection_id, track_id, org_id, position) "
    "SELECT c.id, t.id, c.org_id, (SELECT count(*) FROM collection_tracks x WHERE x.collection_id = c.id) "
    "FROM collections c JOIN tracks t ON t.id = :track AND t.org_id = c.org_id "
    "WHERE c.id = :collection ON CONFLICT (collection_id, track_id) DO NOTHING";
inline constexpr std::string_view kRevokeShare =
    "UPDATE share_links SET revoked_at = coalesce(revoked_at, now()) WHERE id = :id";
inline constexpr std::string_view kUserExists = "SELECT count(*) FROM users WHERE id = :id";
inline constexpr std::string_view kOrganizationExists = "SELECT count(*) FROM organizations WHERE id = :id";

// Bulk seed for benchmarks, in set-based statements (a million saves in seconds, not minutes).
// :org, :users, :tracks, :saves, :prefix are bound; ids derive from :prefix so runs never collide.
inline constexpr std::string_view kSeedUsers =
    "INSERT INTO users (id, email) SELECT 'usr_' || :prefix || 'u' || n, "
    "'bench' || n || '.' || :prefix || '@example.com' FROM generate_series(1, CAST(:users AS integer)) AS n";
inline constexpr std::string_view kSeedMembers =
    "INSERT INTO memberships (user_id, org_id, capabilities) SELECT 'usr_' || :prefix || 'u' || n, :org, "
    "ARRAY['USE_MUSIC_GENERATION'] FROM generate_series(1, CAST(:users AS integer)) AS n";
// Half creation, half focus; four engines; 2% without a duration; every fifth title non-ASCII.
inline constexpr std::string_view kSeedTracks =
    "INSERT INTO tracks (id, org_id, title, engine, mode, measured_duration_seconds, instrumental, licence_class, "
    "created_at) SELECT 'mtrack_' || :prefix || 't' || n, :org, "
    "CASE WHEN n % 5 = 0 THEN 'Nachtmusik Café ☕ ' || n ELSE 'Track ' || n END, "
    "(ARRAY['studio','lyra','aria','pulse'])[1 + n % 4], CASE WHEN n % 2 = 0 THEN 'creation' ELSE 'focus' END, "
    "CASE WHEN n % 50 = 0 THEN NULL ELSE 60 + (n % 240) + 0.5 END, n % 3 = 0, "
    "(ARRAY['commercial_cleared','commercial_enterprise','personal_only','unclear'])[1 + n % 4], "
    "timestamptz '2026-01-01 00:00:00+00' + n * interval '1 minute' "
    "FROM generate_series(1, CAST(:tracks AS integer)) AS n";
// User u saves tracks u*1000+i (mod the track count): distinct per user; pairs share a saved_at.
inline constexpr std::string_view kSeedSaves =
    "INSERT INTO library_saves (user_id, track_id, org_id, mode, engine, saved_at) "
    "SELECT 'usr_' || :prefix || 'u' || u, 'mtrack_' || :prefix || 't' || t.n, :org, "
    "CASE WHEN t.n % 2 = 0 THEN 'creation' ELSE 'focus' END, (ARRAY['studio','lyra','aria','pulse'])[1 + t.n % 4], "
    "timestamptz '2026-06-01 00:00:00+00' - (i / 2) * interval '1 second' "
    "FROM generate_series(1, CAST(:users AS integer)) AS u, generate_series(0, CAST(:saves AS integer) - 1) AS i, "
    "LATERAL (SELECT 1 + (u * 1000 + i) % CAST(:tracks AS integer) AS n) AS t";
inline constexpr std::string_view kSeedCollections =
    "INSERT INTO collections (id, org_id, user_id, name) SELECT 'mcoll_' || :prefix || 'c' || n, :org, "
    "'usr_' || :prefix || 'u' || n, 'Favourites' FROM generate_series(1, CAST(:users AS integer)) AS n";
// Every other saved track of the user, up to 500: all of a collection's tracks are saved ones.
inline constexpr std::string_view kSeedCollectionTracks =
    "INSERT INTO collection_tracks (collection_id, track_id, org_id, position) "
    "SELECT 'mcoll_' || :prefix || 'c' || u, 'mtrack_' || :prefix || 't' || (1 + (u * 1000 + 2 * j) % "
    "CAST(:tracks AS integer)), :org, j FROM generate_series(1, CAST(:users AS integer)) AS u, "
    "generate_series(0, LEAST(499, (CAST(:saves AS integer) - 1) / 2)) AS j";
inline constexpr std::string_view kAnalyze =
    "ANALYZE organizations, users, memberships, api_keys, tracks, library_saves, collections, collection_tracks";

// music-admin check: every copy the listing reads instead of joining, compared with its source.
// Each counts the rows that disagree; any non-zero count is drift.
inline constexpr std::string_view kDriftCollectionSavedAt =
    "SELECT count(*) FROM collection_tracks ct JOIN collections c ON c.id = ct.collection_id "
    "LEFT JOIN library_saves s ON s.user_id = c.user_id AND s.track_id = ct.track_id "
    "WHERE ct.saved_at IS DISTINCT FROM s.saved_at";
// Collections whose entries' positions are not exactly 0..n-1 (each collection counts once).
inline constexpr std::string_view kDriftCollectionPositions =
    "SELECT count(*) FROM (SELECT collection_id FROM collection_tracks GROUP BY collection_id "
    "HAVING min(position) <> 0 OR max(position) <> count(*) - 1 OR count(DISTINCT position) <> count(*)) bad";
inline constexpr std::string_view kDriftSaveModeEngine =
    "SELECT count(*) FROM library_saves s JOIN tracks t ON t.id = s.track_id "
    "WHERE s.mode IS DISTINCT FROM t.mode OR s.engine IS DISTINCT FROM t.engine OR s.org_id IS DISTINCT FROM t.org_id";
// music-admin explain: the generic plan of each listing variant (db/statements.hpp's text).
inline constexpr std::string_view kGenericPlans = "SET plan_cache_mode = force_generic_plan";

}  // namespace music_api::sql::admin
