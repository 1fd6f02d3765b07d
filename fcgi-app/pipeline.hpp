// The request, start to end: route → authenticate → params → query (with its own re-check) → render.
#pragma once

#include <string>
#include <string_view>

#include "db/database.hpp"
#include "http/auth_cache.hpp"
#include "http/request.hpp"
#include "http/response.hpp"

namespace music_api {

struct PipelineContext {
  Database& database;
  AuthCache& auth_cache;
  std::string_view pepper;
  int retry_after_seconds;
};

// Fills `response` (its body buffer is reused across requests). Never throws for bad input.
void Handle(const Request& request, std::string_view trace_id, PipelineContext& context, Response& response);

}  // namespace music_api
