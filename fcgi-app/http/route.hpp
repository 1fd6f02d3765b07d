// Routing: which resource a request names, before anything else is looked at. One table.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "http/request.hpp"

namespace music_api {

enum class RouteId {
  kListTracks,
  kTrack,
  kTrackSave,
  kTrackShare,
  kCollections,
  kCollection,
  kCollectionTracks,
  kCollectionTrack,
  kCollectionOrder,
  kShare,
  kSharedLink,
  kSharedSave,
  kStatus,
  kPing,  // readiness: a database round trip (also /music-api/ready)
  kLive,  // liveness: the worker answers, no SQL
};

// The ids a path names. Each is nullopt when its segment is not a well-formed id of its kind: the
// route still matches, and is answered like an unknown resource once the caller is known (an org
// with the same 403 as one the caller is not in, the others with the same 404 as a missing one),
// so the shape of an id tells nothing.
struct Route {
  RouteId id = RouteId::kListTracks;
  std::optional<std::string> organization_id;
  std::optional<std::string> track_id;
  std::optional<std::string> collection_id;
  std::optional<std::string> share_id;
  std::optional<std::string> token;  // shr_…: a share link's public token
};

// Every route is one row of one table (method set + path pattern, or the host-only endpoint nginx
// names in MUSIC_API_INTERNAL). A path no row matches is 404; a method its row does not allow is
// 405 with that row's Allow. Requests through the host-only location only ever match its rows.
Result<Route> MatchRoute(std::string_view method, std::string_view path, std::string_view internal_endpoint = {});
inline Result<Route> MatchRoute(const Request& request) {
  return MatchRoute(request.method, request.Path(), request.internal_endpoint);
}

}  // namespace music_api
