// Routing: which resource a method and path name, before anything else is looked at.
#include "http/route.hpp"

#include "core/text.hpp"

namespace music_api {

Result<ListRoute> MatchRoute(std::string_view method, std::string_view path) {
  constexpr std::string_view kPrefix = "/v1/music/";
  if (!path.starts_with(kPrefix)) return Fail(ErrorCode::kResourceNotFound);
  std::string_view rest = path.substr(kPrefix.size());
  size_t slash = rest.find('/');
  if (slash == 0 || slash == std::string_view::npos) return Fail(ErrorCode::kResourceNotFound);
  std::string_view org_segment = rest.substr(0, slash);
  std::string_view tail = rest.substr(slash);
  if (tail != "/tracks" && tail != "/tracks/") return Fail(ErrorCode::kResourceNotFound);
  if (method != "GET" && method != "HEAD") return Fail(ErrorCode::kMethodNotAllowed);

  ListRoute route;
  if (auto decoded = PercentDecode(org_segment); decoded && IsResourceId(*decoded, "org_")) {
    route.organization_id = std::move(*decoded);
  }
  return route;
}

}  // namespace music_api
