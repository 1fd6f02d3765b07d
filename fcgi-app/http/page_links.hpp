// What lets a client poll the list cheaply: a validator for the page (ETag / If-None-Match) and
// links to the neighbouring pages (RFC 8288).
#pragma once

#include <string>
#include <string_view>

#include "http/query_params.hpp"

namespace music_api {

// W/"…": a weak validator from the page's bytes (SHA-256, first 128 bits), the same on every host.
std::string WeakEtag(std::string_view body);

// If-None-Match holds `*` or an entity tag that weakly matches `etag` (RFC 9110 13.1.2).
bool IfNoneMatch(std::string_view header, std::string_view etag);

// </v1/music/ORG/tracks?limit=L&offset=N…>; rel="first", then rel="prev" when offset > 0 and
// rel="next" when `has_next`. The filters are carried over, percent-encoded.
void AppendPageLinks(std::string& out, std::string_view org_id, const ListParams& params, bool has_next);

}  // namespace music_api
