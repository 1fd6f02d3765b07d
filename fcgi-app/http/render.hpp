// JSON bodies: the page of tracks and the error envelope, in the spec's key order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <optional>
#include <vector>

#include "core/error.hpp"
#include "http/library_records.hpp"
#include "http/track_page.hpp"

namespace music_api {

// Appends {"items":[…],"limit":L,"offset":O} to `out` (reserve once, reuse across requests).
void RenderTrackPage(const TrackPage& page, int limit, int64_t offset, std::string& out);

// One track's signed URLs, already rendered as JSON values: the master's URL or null, and the
// stems' object ({"name":"url",…}) or null.
struct TrackUrls {
  std::string_view playback_url_json = "null";
  std::string_view stem_urls_json = "null";
};
// Appends row `index` of `page` as a track object (the list item's keys, in the same order).
void RenderTrack(const TrackPage& page, size_t index, const TrackUrls& urls, std::string& out);

// {"id":"mlib_…","track_id":…,"source":…,"created_at":…,"saved":true}
void RenderLibraryEntry(std::string_view entry_id, std::string_view track_id, std::string_view source,
                        int64_t created_at, std::string& out);
// {"success":true,"id":…,"detail":…}: the mutation acknowledgement.
void RenderAcknowledgement(std::string_view id, std::string_view detail, std::string& out);

// {"id","name","description","cover_track_id","cover_image_url","track_count","created_at","updated_at"}
void RenderCollection(const CollectionRecord& collection, std::string& out);
// {"items":[collection…],"limit":L,"offset":O}
void RenderCollectionPage(const std::vector<CollectionRecord>& items, int limit, int64_t offset, std::string& out);
// {"collection_id":…,"items":[{"track_id","position","added_at"}…],"limit":L,"offset":O}
void RenderCollectionEntries(std::string_view collection_id, const std::vector<CollectionEntry>& items, int limit,
                             int64_t offset, std::string& out);
// {"id":"mslink_…","token":"shr_…","url":…,"target_type":"track","visibility":…,"expires_at":…,"created_at":…}
void RenderShareCreated(const ShareLink& link, std::string_view token, std::string_view url, std::string& out);

// A share link's public answer. `track` is null for an unavailable one (only the message then).
struct SharedTrackView {
  const TrackPage* track = nullptr;  // row 0
  std::string_view playback_url_json = "null";
  std::string_view licence_version;
  bool commercial_use = false;
  bool requires_attribution = true;
};
void RenderSharedLink(std::string_view target_type, std::string_view visibility, std::optional<int64_t> expires_at,
                      const SharedTrackView* track, std::string_view unavailable_message, std::string& out);
// {"id":"mlib_…","track_id":…,"source":…,"share_link_id":…,"created_at":…}
void RenderSharedSave(std::string_view entry_id, std::string_view track_id, std::string_view source,
                      const std::optional<std::string>& share_link_id, int64_t created_at, std::string& out);

// Appends {"success":false,"error":{code,message,system_message,type,status,details,trace_id,timestamp}}.
void RenderErrorEnvelope(const ApiError& error, std::string_view trace_id, std::string_view timestamp,
                         std::string& out);

}  // namespace music_api
