// Routing: which resource a method and path name, before anything else is looked at.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace music_api {

struct ListRoute {
  // nullopt when the path segment is not a well-formed org id: still this route, but answered
  // with the same 403 as an unknown org once the key is known (no existence leak).
  std::optional<std::string> organization_id;
};

// GET or HEAD /v1/music/{organization_id}/tracks[/]; any other path → 404, another method → 405.
Result<ListRoute> MatchRoute(std::string_view method, std::string_view path);

}  // namespace music_api
