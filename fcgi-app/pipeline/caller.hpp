// What every route under an org shares: the caller, authenticated once, and each statement's own
// re-check of it (pipeline.cpp defines Authenticate; the route handlers use AsCaller).
#pragma once

#include <ctime>
#include <string>
#include <string_view>
#include <utility>

#include "auth/auth.hpp"
#include "core/secrets.hpp"
#include "http/route.hpp"
#include "pipeline/pipeline.hpp"

namespace music_api {

enum class AuthSource { kCache, kDatabase };

struct Caller {
  std::string user_id;
  AuthSource source;
};

// The key and org access, from the worker's cache when it holds a past success, else the database.
// Key ids the database just said it does not know are refused without asking it again.
Result<Caller> Authenticate(const ApiKeyParts& key, std::string_view presented_hash,
                            const std::optional<std::string>& org_id, bool use_cache, int64_t now,
                            std::string_view trace_id, PipelineContext& context, Response& response);

// Authenticates the request, then runs `query` (one statement that re-checks the caller itself
// and answers `auth_ok`). When that check disagrees with what the cache knew (a change not yet
// notified), the cache entry goes and the request is decided again from the database, which
// answers with the right error. Every route under an org goes through here.
template <typename Query>
auto AsCaller(const Request& request, const Route& route, std::string_view trace_id, PipelineContext& context,
              Response& response, Query&& query) -> decltype(query(std::declval<const CheckedCaller&>())) {
  auto presented = PresentedApiKey(request.x_api_key, request.authorization);
  if (!presented) return Fail(ErrorCode::kAuthenticationRequired);
  // A string that cannot be a key is refused without a database round trip.
  auto key = ParseApiKey(*presented);
  if (!key) return Fail(ErrorCode::kInvalidApiKey);
  const std::string presented_hash = HashApiKeySecret(context.pepper, *key);
  // One clock for the whole request: the app's, also bound into each statement's own re-check.
  const int64_t now = static_cast<int64_t>(std::time(nullptr));

  const uint64_t generation = context.auth_generation ? context.auth_generation->load(std::memory_order_acquire) : 0;
  const bool reopened = context.database.AuthChanged();
  if (reopened || generation != context.auth_generation_seen) {
    context.auth_cache.Clear();
    context.auth_generation_seen = generation;
  }
  bool use_cache = true;
  for (;;) {
    auto caller =
        Authenticate(*key, presented_hash, route.organization_id, use_cache, now, trace_id, context, response);
    if (!caller) return Fail(caller.error());
    const std::string& org_id = *route.organization_id;
    auto answer = query(CheckedCaller{key->id, presented_hash, org_id, caller->user_id, now});
    if (!answer || answer->auth_ok) return answer;
    context.auth_cache.Forget(key->id, org_id);
    if (caller->source == AuthSource::kCache) {
      use_cache = false;
      continue;
    }
    return Fail(ErrorCode::kServiceUnavailable);  // changed again within this request: let it retry
  }
}

}  // namespace music_api
