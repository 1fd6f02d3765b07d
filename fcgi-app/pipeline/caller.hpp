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

// The key and org access, from the worker's cache when it holds a past success, else the database
// (`on_primary`: the primary itself, never the cache or a replica). Key ids the database just said
// it does not know are refused without asking it again.
Result<Caller> Authenticate(const ApiKeyParts& key, std::string_view presented_hash,
                            const std::optional<std::string>& org_id, bool use_cache, bool on_primary, int64_t now,
                            std::string_view trace_id, PipelineContext& context, Response& response);

// The key a request presents, parsed and hashed, with the clock of the whole request. The worker's
// cache is flushed first when the host's listener saw a key change or the read session moved.
struct PresentedKey {
  ApiKeyParts key;
  std::string hash;
  int64_t now;  // unix seconds: the app's clock, also bound into each statement's own re-check
};
Result<PresentedKey> ReadPresentedKey(const Request& request, PipelineContext& context);

// Authenticates the request, then runs `query` (one statement that re-checks the caller itself
// and answers `auth_ok`). When that check disagrees with what the cache knew (a change not yet
// notified), the cache entry goes and the request is decided again from the database; when it
// disagrees with what a replica said, the primary decides (a key revoked there is 401, not a
// retry). Every route under an org goes through here.
template <typename Query>
auto AsCaller(const Request& request, const Route& route, std::string_view trace_id, PipelineContext& context,
              Response& response, Query&& query) -> decltype(query(std::declval<const CheckedCaller&>())) {
  auto presented = ReadPresentedKey(request, context);
  if (!presented) return Fail(presented.error());
  bool use_cache = true, on_primary = false;
  for (;;) {
    auto caller = Authenticate(presented->key, presented->hash, route.organization_id, use_cache, on_primary,
                               presented->now, trace_id, context, response);
    if (!caller) return Fail(caller.error());
    const std::string& org_id = *route.organization_id;
    auto answer = query(CheckedCaller{presented->key.id, presented->hash, org_id, caller->user_id, presented->now});
    if (!answer || answer->auth_ok) return answer;
    context.auth_cache.Forget(presented->key.id, org_id);
    if (caller->source == AuthSource::kCache) {
      use_cache = false;
      continue;
    }
    if (!on_primary) {
      on_primary = true;
      continue;
    }
    return Fail(ErrorCode::kServiceUnavailable);  // changed again within this request: let it retry
  }
}

}  // namespace music_api
