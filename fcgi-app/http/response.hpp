// The response a stage chain produces, and its CGI header block.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace music_api {

inline constexpr std::string_view kJsonContentType = "application/json; charset=utf-8";
// Answers carrying signed URLs (credentials) or errors are never stored; list pages may be kept
// and revalidated (ETag) by the client that fetched them.
inline constexpr std::string_view kNoStore = "private, no-store";
inline constexpr std::string_view kRevalidate = "private, no-cache";

struct Response {
  int status = 200;
  std::string_view content_type = kJsonContentType;
  std::string body;
  std::optional<ErrorCode> error;  // set on every error response (logs and metrics)
  size_t rows = 0;                 // items in a 200 page
  int retry_after_seconds = 0;     // sent as Retry-After when > 0
  std::string_view allow;          // sent as Allow on a 405 (the route table's static text)
  std::string_view auth = "-";     // for the request log: how the key was judged (cache, db, unknown_cache)
  std::string_view cache_control = kNoStore;
  bool vary_on_key = false;          // Vary: Authorization, X-API-Key (answers that depend on who asks and may be kept)
  std::string etag;                  // sent as ETag when set
  std::string link;                  // sent as Link when set (RFC 8288)
  bool idempotent_replayed = false;  // Idempotent-Replayed: true (the stored answer of an Idempotency-Key)
  int handler = 0;                   // which handler answered, for metrics: 1 + its row (pipeline.hpp), 0 none

  // Back to a fresh 200 JSON answer, keeping the buffers' capacity.
  void Reset() {
    status = 200, content_type = kJsonContentType, body.clear(), error.reset(), rows = 0;
    retry_after_seconds = 0, allow = {}, auth = "-", cache_control = kNoStore, vary_on_key = false;
    etag.clear(), link.clear(), idempotent_replayed = false, handler = 0;
  }
};

// Fills `response` with the envelope for `error`, reusing its body buffer.
void SetError(Response& response, const ApiError& error, std::string_view trace_id, int retry_after_seconds);

// Status line and headers every response carries (Content-Type, Cache-Control, X-Request-ID,
// Content-Length, plus Allow on 405, Retry-After, ETag, Link and Vary when set), ending with the
// blank line. A 304 has no body and no Content-Length, and keeps the other headers.
void AppendCgiHeaders(const Response& response, std::string_view trace_id, std::string& out);

std::string_view ReasonPhrase(int status);

}  // namespace music_api
