// Routing: which resource a request names, before anything else is looked at. One table.
#include "http/route.hpp"

#include <array>
#include <vector>

#include "core/text.hpp"

namespace music_api {
namespace {

// A path pattern under /v1/music/, one entry per segment: a literal, or a placeholder that takes
// an id of one kind ({org} org_, {track} mtrack_, {collection} mcoll_, {share} mslink_,
// {token} shr_). Up to five segments.
using Pattern = std::array<std::string_view, 5>;

struct RouteRow {
  RouteId id;
  std::string_view allow;     // the methods it answers, exactly as the Allow header lists them
  std::string_view internal;  // host-only: the MUSIC_API_INTERNAL value that selects it
  Pattern pattern;            // public: the path under /v1/music/ (empty for host-only rows)
};

constexpr RouteRow kRoutes[] = {
    {RouteId::kListTracks, "GET, HEAD", "", {"{org}", "tracks"}},
    {RouteId::kTrack, "GET, HEAD, DELETE", "", {"{org}", "tracks", "{track}"}},
    {RouteId::kTrackSave, "POST, DELETE", "", {"{org}", "tracks", "{track}", "save"}},
    {RouteId::kTrackShare, "POST", "", {"{org}", "tracks", "{track}", "share"}},
    {RouteId::kCollections, "GET, HEAD, POST", "", {"{org}", "collections"}},
    {RouteId::kCollection, "GET, HEAD, PATCH, DELETE", "", {"{org}", "collections", "{collection}"}},
    {RouteId::kCollectionTracks, "GET, HEAD, POST", "", {"{org}", "collections", "{collection}", "tracks"}},
    {RouteId::kCollectionTrack, "DELETE", "", {"{org}", "collections", "{collection}", "tracks", "{track}"}},
    {RouteId::kCollectionOrder, "PATCH", "", {"{org}", "collections", "{collection}", "order"}},
    {RouteId::kShare, "DELETE", "", {"{org}", "shares", "{share}"}},
    {RouteId::kSharedLink, "GET, HEAD", "", {"shared", "{token}"}},
    {RouteId::kSharedSave, "POST", "", {"shared", "{token}", "save"}},
    {RouteId::kStatus, "GET, HEAD", "status", {}},
    {RouteId::kPing, "GET, HEAD", "ping", {}},
    {RouteId::kPing, "GET, HEAD", "ready", {}},
    {RouteId::kLive, "GET, HEAD", "live", {}},
};

bool Allows(std::string_view allow, std::string_view method) {
  while (!allow.empty()) {
    size_t comma = allow.find(", ");
    if (allow.substr(0, comma) == method) return true;
    allow = comma == std::string_view::npos ? std::string_view{} : allow.substr(comma + 2);
  }
  return false;
}

// The segments of a path under /v1/music/ (one trailing slash allowed); nullopt for any other path
// or an empty segment.
std::optional<std::vector<std::string_view>> Segments(std::string_view path) {
  constexpr std::string_view kPrefix = "/v1/music/";
  if (!path.starts_with(kPrefix)) return std::nullopt;
  std::string_view rest = path.substr(kPrefix.size());
  if (rest.ends_with('/')) rest.remove_suffix(1);
  std::vector<std::string_view> segments;
  while (!rest.empty() || segments.empty()) {
    size_t slash = rest.find('/');
    std::string_view segment = rest.substr(0, slash);
    if (segment.empty()) return std::nullopt;
    segments.push_back(segment);
    if (slash == std::string_view::npos) break;
    rest = rest.substr(slash + 1);
    if (rest.empty()) return std::nullopt;  // two slashes at the end
  }
  return segments;
}

std::optional<std::string> SegmentId(std::string_view segment, std::string_view prefix) {
  auto decoded = PercentDecode(segment);
  if (decoded && IsResourceId(*decoded, prefix)) return decoded;
  return std::nullopt;
}

bool MatchPattern(const Pattern& pattern, const std::vector<std::string_view>& segments, Route& route) {
  size_t length = 0;
  while (length < pattern.size() && !pattern[length].empty()) ++length;
  if (length == 0 || length != segments.size()) return false;
  for (size_t i = 0; i < length; ++i) {
    std::string_view p = pattern[i];
    if (!p.starts_with('{')) {
      if (segments[i] != p) return false;
      continue;
    }
    // A literal segment where an id goes never names a resource ("/tracks/save" is not a track).
    if (segments[i] == "shared") return false;
    if (p == "{org}") {
      route.organization_id = SegmentId(segments[i], "org_");
    } else if (p == "{track}") {
      route.track_id = SegmentId(segments[i], "mtrack_");
    } else if (p == "{collection}") {
      route.collection_id = SegmentId(segments[i], "mcoll_");
    } else if (p == "{share}") {
      route.share_id = SegmentId(segments[i], "mslink_");
    } else if (p == "{token}") {
      route.token = SegmentId(segments[i], "shr_");
    }
  }
  return true;
}

}  // namespace

Result<Route> MatchRoute(std::string_view method, std::string_view path, std::string_view internal_endpoint) {
  const auto segments = internal_endpoint.empty() ? Segments(path) : std::nullopt;
  for (const RouteRow& row : kRoutes) {
    Route route{row.id, std::nullopt, std::nullopt, std::nullopt, std::nullopt, std::nullopt};
    bool matched = internal_endpoint.empty() ? segments && MatchPattern(row.pattern, *segments, route)
                                             : row.internal == internal_endpoint;
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
