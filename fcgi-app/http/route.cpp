// Routing: which resource a request names, before anything else is looked at. One table.
#include "http/route.hpp"

#include "core/text.hpp"

namespace music_api {
namespace {

// The id in one path segment, decoded, when it has the shape of a PREFIX id.
std::optional<std::string> SegmentId(std::string_view segment, std::string_view prefix) {
  auto decoded = PercentDecode(segment);
  if (decoded && IsResourceId(*decoded, prefix)) return decoded;
  return std::nullopt;
}

// /v1/music/{organization_id}/tracks[/{track_id}[/save]][/]: which of the three, or none.
std::optional<RouteId> MatchTracksPath(std::string_view path, Route& route) {
  constexpr std::string_view kPrefix = "/v1/music/";
  if (!path.starts_with(kPrefix)) return std::nullopt;
  std::string_view rest = path.substr(kPrefix.size());
  if (rest.ends_with('/')) rest.remove_suffix(1);
  size_t slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos) return std::nullopt;
  std::string_view org = rest.substr(0, slash);
  std::string_view tail = rest.substr(slash);
  constexpr std::string_view kTracks = "/tracks";
  if (!tail.starts_with(kTracks)) return std::nullopt;
  tail.remove_prefix(kTracks.size());
  RouteId id = RouteId::kListTracks;
  if (!tail.empty()) {
    if (tail.front() != '/' || tail.size() == 1) return std::nullopt;
    tail.remove_prefix(1);
    size_t end = tail.find('/');
    std::string_view track = tail.substr(0, end);
    std::string_view after = end == std::string_view::npos ? std::string_view{} : tail.substr(end);
    if (track.empty()) return std::nullopt;
    if (after.empty()) {
      id = RouteId::kTrack;
    } else if (after == "/save") {
      id = RouteId::kTrackSave;
    } else {
      return std::nullopt;
    }
    route.track_id = SegmentId(track, "mtrack_");
  }
  route.organization_id = SegmentId(org, "org_");
  return id;
}

template <RouteId kId>
bool MatchTracks(std::string_view path, Route& route) {
  Route candidate;
  auto id = MatchTracksPath(path, candidate);
  if (id != kId) return false;
  route.organization_id = std::move(candidate.organization_id);
  route.track_id = std::move(candidate.track_id);
  return true;
}

struct RouteRow {
  RouteId id;
  std::string_view allow;     // the methods it answers, exactly as the Allow header lists them
  std::string_view internal;  // host-only: the MUSIC_API_INTERNAL value that selects it
  bool (*match_path)(std::string_view path, Route& route);  // public: the path pattern
};

constexpr RouteRow kRoutes[] = {
    {RouteId::kListTracks, "GET, HEAD", "", MatchTracks<RouteId::kListTracks>},
    {RouteId::kTrack, "GET, HEAD, DELETE", "", MatchTracks<RouteId::kTrack>},
    {RouteId::kTrackSave, "POST, DELETE", "", MatchTracks<RouteId::kTrackSave>},
    {RouteId::kStatus, "GET, HEAD", "status", nullptr},
    {RouteId::kPing, "GET, HEAD", "ping", nullptr},
};

bool Allows(std::string_view allow, std::string_view method) {
  while (!allow.empty()) {
    size_t comma = allow.find(", ");
    if (allow.substr(0, comma) == method) return true;
    allow = comma == std::string_view::npos ? std::string_view{} : allow.substr(comma + 2);
  }
  return false;
}

}  // namespace

Result<Route> MatchRoute(std::string_view method, std::string_view path, std::string_view internal_endpoint) {
  for (const RouteRow& row : kRoutes) {
    Route route{row.id, std::nullopt, std::nullopt};
    bool matched =
        internal_endpoint.empty() ? row.match_path && row.match_path(path, route) : row.internal == internal_endpoint;
    if (!matched) continue;
    if (!Allows(row.allow, method)) {
      ApiError error = ApiError::Of(ErrorCode::kMethodNotAllowed);
      error.allow = row.allow;
      error.system_message = "Allowed methods: " + std::string(row.allow);
      return Fail(std::move(error));
    }
    return route;
  }
  return Fail(ErrorCode::kResourceNotFound);
}

}  // namespace music_api
