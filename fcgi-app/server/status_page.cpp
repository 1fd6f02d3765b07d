// The host-only status page (JSON or Prometheus text) and the health check.
#include "server/status_page.hpp"

namespace music_api {

void HandleInternal(const Request& request, std::string_view trace_id, const SharedStats& stats, Database& database,
                    int retry_after_seconds, Response& response) {
  response.status = 200;
  response.error.reset();
  response.rows = 0;
  response.retry_after_seconds = 0;
  response.content_type = kJsonContentType;
  if (request.method != "GET" && request.method != "HEAD") {
    SetError(response, ApiError::Of(ErrorCode::kMethodNotAllowed), trace_id, retry_after_seconds);
  } else if (request.internal_endpoint == "status") {
    if (request.query.find("format=prometheus") != std::string_view::npos) {
      response.content_type = "text/plain; version=0.0.4; charset=utf-8";
      response.body = stats.RenderPrometheus();
    } else {
      response.body = stats.RenderJson();
    }
  } else if (request.internal_endpoint == "ping") {
    // Healthy means a database round trip works from this worker, not merely that it runs.
    auto ping = database.Ping(trace_id);
    if (!ping || !*ping) {
      SetError(response, ApiError::Of(ErrorCode::kServiceUnavailable), trace_id, retry_after_seconds);
    } else {
      response.body = R"({"status":"ok","database":"ok"})";
    }
  } else {
    SetError(response, ApiError::Of(ErrorCode::kResourceNotFound), trace_id, retry_after_seconds);
  }
}

}  // namespace music_api
