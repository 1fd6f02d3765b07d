// JSON bodies: the page of tracks and the error envelope, in the spec's key order.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/error.hpp"
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

// Appends {"success":false,"error":{code,message,system_message,type,status,details,trace_id,timestamp}}.
void RenderErrorEnvelope(const ApiError& error, std::string_view trace_id, std::string_view timestamp,
                         std::string& out);

}  // namespace music_api
