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

// Appends {"success":false,"error":{code,message,system_message,type,status,details,trace_id,timestamp}}.
void RenderErrorEnvelope(const ApiError& error, std::string_view trace_id, std::string_view timestamp,
                         std::string& out);

}  // namespace music_api
