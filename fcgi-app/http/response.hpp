// The response a stage chain produces, and its CGI header block.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace music_api {

inline constexpr std::string_view kJsonContentType = "application/json; charset=utf-8";

struct Response {
  int status = 200;
  std::string_view content_type = kJsonContentType;
  std::string body;
  std::optional<ErrorCode> error;  // set on every error response (logs and metrics)
  size_t rows = 0;                 // items in a 200 page
  int retry_after_seconds = 0;     // sent as Retry-After when > 0
  std::string_view allow;          // sent as Allow on a 405 (the route table's static text)
  std::string_view auth = "-";     // for the request log: how the key was judged (cache, db, unknown_cache)

  // Back to a fresh 200 JSON answer, keeping the body buffer's capacity.
  void Reset() {
    status = 200, content_type = kJsonContentType, body.clear(), error.reset(), rows = 0;
    retry_after_seconds = 0, allow = {}, auth = "-";
  }
};

// Fills `response` with the envelope for `error`, reusing its body buffer.
void SetError(Response& response, const ApiError& error, std::string_view trace_id, int retry_after_seconds);

// Status line and headers every response carries (Content-Type, Cache-Control, X-Request-ID,
// Content-Length, plus Allow on 405 and Retry-After when set), ending with the blank line.
void AppendCgiHeaders(const Response& response, std::string_view trace_id, std::string& out);

std::string_view ReasonPhrase(int status);

}  // namespace music_api
