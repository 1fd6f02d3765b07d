// Every SQL text the API workers run, named. Values are always bound (:name), never spliced in.
#pragma once

#include <string>
#include <string_view>

namespace music_api::sql {

// Per-session settings, bound so that even these are never string-built.
inline constexpr std::string_view kSessionSetup =
    "SELECT set_config('statement_timeout', :timeout, false), "
    "set_config('application_name', 'music-api', false)";

// The key row and, in the same round trip, the caller's membership in the requested org.
inline constexpr std::string_view kFindKey =
    "SELECT k.secret_hash, k.user_id, "
    "CASE WHEN k.revoked_at IS NULL THEN 0 ELSE 1 END, "
    "CASE WHEN k.expires_at IS NOT NULL AND k.expires_at <= now() THEN 1 ELSE 0 END, "
    "CASE WHEN m.user_id IS NULL THEN 0 ELSE 1 END, "
    "CASE WHEN 'USE_MUSIC_GENERATION' = ANY (m.capabilities) THEN 1 ELSE 0 END "
    "FROM api_keys k LEFT JOIN memberships m ON m.user_id = k.user_id AND m.org_id = :org "
    "WHERE k.id = :key";

// Whether a collection exists *and* is the caller's in this org: one answer for both (no leak).
inline constexpr std::string_view kCollectionOwned =
    "SELECT count(*) FROM collections WHERE id = :collection AND org_id = :org AND user_id = :user";

inline constexpr std::string_view kPing = "SELECT 1";

// The listing. The inner query walks one index in (saved_at DESC, track_id DESC) order and stops
// after offset+limit entries; only the rows of the page are joined to tracks.
struct ListingFilters {
  bool mode = false;
  bool engine = false;
  bool collection = false;
  int Index() const { return (mode ? 1 : 0) | (engine ? 2 : 0) | (collection ? 4 : 0); }
};
inline constexpr int kListingVariants = 8;

inline std::string ListingQuery(ListingFilters filters) {
  std::string q =
      "SELECT t.id, t.title, t.engine, t.mode, t.measured_duration_seconds, "
      "CASE WHEN t.instrumental THEN 1 ELSE 0 END, t.licence_class, "
      "CAST(floor(extract(epoch FROM t.created_at)) AS bigint) "
      "FROM (SELECT s.track_id, s.saved_at FROM library_saves s ";
  if (filters.collection) {
    q += "JOIN collection_tracks ct ON ct.collection_id = :collection AND ct.track_id = s.track_id ";
  }
  q += "WHERE s.user_id = :user AND s.org_id = :org ";
  if (filters.mode) q += "AND s.mode = :mode ";
  if (filters.engine) q += "AND s.engine = :engine ";
  q +=
      "ORDER BY s.saved_at DESC, s.track_id DESC LIMIT :limit OFFSET :offset) page "
      "JOIN tracks t ON t.id = page.track_id "
      "ORDER BY page.saved_at DESC, page.track_id DESC";
  return q;
}

}  // namespace music_api::sql
