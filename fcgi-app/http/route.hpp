// Routing: which resource a request names, before anything else is looked at. One table.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "http/request.hpp"

namespace music_api {

enum class RouteId { kListTracks, kTrack, kTrackSave, kStatus, kPing };

struct Route {
  RouteId id = RouteId::kListTracks;
  // Routes under an org: nullopt when the path segment is not a well-formed org id: still this
  // route, but answered with the same 403 as an unknown org once the key is known (no existence leak).
  std::optional<std::string> organization_id;
  // kTrack, kTrackSave: nullopt when the segment is not a well-formed track id (a 404 once the key
  // and org are known, like a track that does not exist).
  std::optional<std::string> track_id;
};

// Every route is one row of one table (method set + path pattern, or the host-only endpoint nginx
// names in MUSIC_API_INTERNAL). A path no row matches is 404; a method its row does not allow is
// 405 with that row's Allow. Requests through the host-only location only ever match its rows.
Result<Route> MatchRoute(std::string_view method, std::string_view path, std::string_view internal_endpoint = {});
inline Result<Route> MatchRoute(const Request& request) {
  return MatchRoute(request.method, request.Path(), request.internal_endpoint);
}

}  // namespace music_api
