// Routing: which resource a request names, before anything else is looked at. One table.
#include "http/route.hpp"

#include "core/text.hpp"

namespace music_api {
namespace {

// /v1/music/{organization_id}/tracks[/]
bool MatchListTracks(std::string_view path, Route& route) {
  constexpr std::string_view kPrefix = "/v1/music/";
  if (!path.starts_with(kPrefix)) return false;
  std::string_view rest = path.substr(kPrefix.size());
  size_t slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos) return false;
  std::string_view tail = rest.substr(slash);
  if (tail != "/tracks" && tail != "/tracks/") return false;
  if (auto decoded = PercentDecode(rest.substr(0, slash)); decoded && IsResourceId(*decoded, "org_")) {
    route.organization_id = std::move(*decoded);
  }
  return true;
}

struct RouteRow {
  RouteId id;
  std::string_view allow;     // the methods it answers, exactly as the Allow header lists them
  std::string_view internal;  // host-only: the MUSIC_API_INTERNAL value that selects it
  bool (*match_path)(std::string_view path, Route& route);  // public: the path pattern
};

constexpr RouteRow kRoutes[] = {
    {RouteId::kListTracks, "GET, HEAD", "", MatchListTracks},
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
    Route route{row.id, std::nullopt};
    bool matched =
        internal_endpoint.empty() ? row.match_path && row.match_path(path, route) : row.internal == internal_endpoint;
    if (!matched) continue;
    if (!Allows(row.allow, method)) {
      ApiError error = ApiError::Of(ErrorCode::kMethodNotAllowed);
      error.allow = row.allow;
      return Fail(std::move(error));
    }
    return route;
  }
  return Fail(ErrorCode::kResourceNotFound);
}

}  // namespace music_api
