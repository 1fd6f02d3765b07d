// The response a stage chain produces, and its CGI header block.
#include "http/response.hpp"

#include "core/time.hpp"
#include "http/json_writer.hpp"
#include "http/render.hpp"

namespace music_api {

void SetError(Response& response, const ApiError& error, std::string_view trace_id, int retry_after_seconds) {
  const ErrorInfo& info = Describe(error.code);
  response.status = info.status;
  response.content_type = kJsonContentType;
  response.error = error.code;
  response.rows = 0;
  // Retry-After where the same request may simply be sent again: nothing was done, or the first
  // of its Idempotency-Key is still running.
  const bool retry = error.code == ErrorCode::kServiceUnavailable || error.code == ErrorCode::kIdempotencyKeyInUse ||
                     error.code == ErrorCode::kConflict;
  response.retry_after_seconds = retry ? retry_after_seconds : 0;
  response.allow = error.allow;
  response.cache_control = kNoStore;
  response.vary_on_key = false;
  response.etag.clear();
  response.link.clear();
  response.body.clear();
  RenderErrorEnvelope(error, trace_id, NowUtc(), response.body);
}

std::string_view ReasonPhrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 201:
      return "Created";
    case 304:
      return "Not Modified";
    case 401:
      return "Unauthorized";
    case 403:
      return "Forbidden";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 409:
      return "Conflict";
    case 415:
      return "Unsupported Media Type";
    case 422:
      return "Unprocessable Entity";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

void AppendCgiHeaders(const Response& response, std::string_view trace_id, std::string& out) {
  out.append("Status: ");
  AppendJsonInteger(out, response.status);
  out.push_back(' ');
  out.append(ReasonPhrase(response.status));
  out.append("\r\nContent-Type: ");
  out.append(response.content_type);
  out.append("\r\nCache-Control: ").append(response.cache_control);
  out.append(
      "\r\nX-Content-Type-Options: nosniff\r\n"
      "X-Request-ID: ");
  out.append(trace_id);
  if (response.status != 304) {
    out.append("\r\nContent-Length: ");
    AppendJsonInteger(out, static_cast<int64_t>(response.body.size()));
  }
  if (response.status == 405 && !response.allow.empty()) out.append("\r\nAllow: ").append(response.allow);
  if (response.retry_after_seconds > 0) {
    out.append("\r\nRetry-After: ");
    AppendJsonInteger(out, response.retry_after_seconds);
  }
  if (!response.etag.empty()) out.append("\r\nETag: ").append(response.etag);
  if (!response.link.empty()) out.append("\r\nLink: ").append(response.link);
  if (response.vary_on_key) out.append("\r\nVary: Authorization, X-API-Key");
  if (response.idempotent_replayed) out.append("\r\nIdempotent-Replayed: true");
  out.append("\r\n\r\n");
}

}  // namespace music_api
