// A POST, PATCH or DELETE sent with an Idempotency-Key: its first 2xx answer is stored with its
// write, in one transaction, and given again to a repeat (Idempotent-Replayed: true).
#pragma once

#include <string_view>

#include "http/route.hpp"
#include "pipeline/routes.hpp"

namespace music_api {

// Authenticates the key first (a stored answer is only ever given to its own, valid key), then
// claims the Idempotency-Key and runs `handle` inside the claim: a 2xx answer is stored and
// committed with the write; any other answer rolls the write back and is not stored (nothing was
// written, so a repeat simply runs again). The same key on another method, path or body is 422
// IDEMPOTENCY_KEY_REUSED; while the first request runs, 409 IDEMPOTENCY_KEY_IN_USE.
Result<void> RunIdempotent(const Request& request, const Route& route, RouteHandler handle, std::string_view trace_id,
                           PipelineContext& context, Response& response);

}  // namespace music_api
