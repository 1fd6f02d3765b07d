// The request, start to end: route → authenticate → params → query (with its own re-check) → render.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "auth/auth_cache.hpp"
#include "core/media_keys.hpp"
#include "db/database.hpp"
#include "http/request.hpp"
#include "http/response.hpp"

namespace music_api {

struct PipelineContext {
  Database& database;
  AuthCache& auth_cache;
  std::string_view pepper;
  int retry_after_seconds;
  // The host-only status page's body (the pool's shared counters belong to the server).
  std::function<void(bool prometheus, std::string& out)> render_status;
  // Moved on by the host's auth listener at each key change on the primary (and each of its
  // reconnects); when it moves, the cache is flushed. nullptr: no listener.
  const std::atomic<uint64_t>* auth_generation = nullptr;
  uint64_t auth_generation_seen = 0;
  // Signs the playback URLs of get-track (never null).
  const MediaSigner* media_signer = nullptr;
};

// The handlers' names, which metrics label requests with (music_api_requests_total{route=…}):
// Response::handler indexes it; 0 is "none" (no handler ran: an unknown path, a refused method).
inline constexpr int kHandlerNames = 22;
std::string_view HandlerName(int handler);

// Fills `response` (its body buffer is reused across requests). Never throws for bad input.
void Handle(const Request& request, std::string_view trace_id, PipelineContext& context, Response& response);

}  // namespace music_api
