// The host-only status page (JSON or Prometheus text) and the health check, like PHP-FPM's
// pm.status_path and ping.path.
#pragma once

#include <string_view>

#include "db/database.hpp"
#include "http/request.hpp"
#include "http/response.hpp"
#include "server/stats.hpp"

namespace music_api {

// `request.internal_endpoint` is "status" or "ping"; anything else is a 404.
void HandleInternal(const Request& request, std::string_view trace_id, const SharedStats& stats, Database& database,
                    int retry_after_seconds, Response& response);

}  // namespace music_api
