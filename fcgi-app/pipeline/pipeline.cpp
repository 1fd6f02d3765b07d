// The request, start to end: route → authenticate → params → query (with its own re-check) → render.
#include "pipeline/pipeline.hpp"

#include <ctime>

#include "auth/auth.hpp"
#include "http/query_params.hpp"
#include "http/render.hpp"
#include "http/route.hpp"

namespace music_api {
namespace {

enum class AuthSource { kCache, kDatabase };

struct Caller {
  std::string user_id;
  AuthSource source;
};

// The key and org access, from the worker's cache when it holds a past success, else the database.
// Key ids the database just said it does not know are refused without asking it again.
Result<Caller> Authenticate(const ApiKeyParts& key, std::string_view presented_hash,
                            const std::optional<std::string>& org_id, bool use_cache, int64_t now,
                            std::string_view trace_id, PipelineContext& context, Response& response) {
  const std::string& org = org_id ? *org_id : std::string();
  if (use_cache && org_id) {
    if (const KeyRecord* cached = context.auth_cache.Find(key.id, org)) {
      // Hash, revocation flag and expiry are judged again on every request, even from the cache.
      auto user_id = Authorize(*cached, presented_hash, true, now);
      if (user_id) {
        response.auth = "cache";
        return Caller{std::move(*user_id), AuthSource::kCache};
      }
    }
  }
  if (context.auth_cache.KnownUnknown(key.id, now)) {
    response.auth = "unknown_cache";
    return Fail(ErrorCode::kInvalidApiKey);
  }
  response.auth = "db";
  auto record = context.database.FindKey(key.id, org, trace_id);
  if (!record) return Fail(record.error());
  if (!*record) context.auth_cache.RememberUnknown(key.id, now);
  auto user_id = Authorize(*record, presented_hash, org_id.has_value(), now);
  if (!user_id) return Fail(user_id.error());
  context.auth_cache.Remember(key.id, org, **record);
  return Caller{std::move(*user_id), AuthSource::kDatabase};
}

struct Page {
  const TrackPage* tracks;
  int limit;
  int64_t offset;
};

Result<Page> ListSavedTracks(const Request& request, const Route& route, std::string_view trace_id,
                             PipelineContext& context, Response& response) {
  auto presented = PresentedApiKey(request.x_api_key, request.authorization);
  if (!presented) return Fail(ErrorCode::kAuthenticationRequired);
  // A string that cannot be a key is refused without a database round trip.
  auto key = ParseApiKey(*presented);
  if (!key) return Fail(ErrorCode::kInvalidApiKey);
  const std::string presented_hash = HashApiKeySecret(context.pepper, *key);
  // One clock for the whole request: the app's, also bound into the listing's own re-check.
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

    auto params = ParseListParams(request.query);
    if (!params) return Fail(params.error());

    const std::string& org_id = *route.organization_id;
    auto listing =
        context.database.ListTracks({key->id, presented_hash, org_id, caller->user_id, now}, *params, trace_id);
    if (!listing) return Fail(listing.error());
    if (!listing->auth_ok) {
      // The statement's own check disagrees with what we knew (a change not yet notified):
      // forget it and decide again from the database, which answers with the right error.
      context.auth_cache.Forget(key->id, org_id);
      if (caller->source == AuthSource::kCache) {
        use_cache = false;
        continue;
      }
      return Fail(ErrorCode::kServiceUnavailable);  // changed again within this request: let it retry
    }
    // Missing and someone else's collection get the same 404: no existence leak.
    if (!listing->collection_ok) return Fail(ApiError{ErrorCode::kResourceNotFound, "Collection not found", {}, {}});
    return Page{listing->page, params->limit, params->offset};
  }
}

// The host-only health check: healthy means a database round trip works from this worker.
Result<void> Ping(std::string_view trace_id, PipelineContext& context, Response& response) {
  auto ping = context.database.Ping(trace_id);
  if (!ping || !*ping) return Fail(ErrorCode::kServiceUnavailable);
  response.body = R"({"status":"ok","database":"ok"})";
  return {};
}

Result<void> Dispatch(const Request& request, std::string_view trace_id, PipelineContext& context, Response& response) {
  auto route = MatchRoute(request);
  if (!route) return Fail(route.error());
  switch (route->id) {
    case RouteId::kListTracks: {
      auto page = ListSavedTracks(request, *route, trace_id, context, response);
      if (!page) return Fail(page.error());
      response.rows = page->tracks->size();
      RenderTrackPage(*page->tracks, page->limit, page->offset, response.body);
      return {};
    }
    case RouteId::kStatus: {
      bool prometheus = request.query.find("format=prometheus") != std::string_view::npos;
      if (prometheus) response.content_type = "text/plain; version=0.0.4; charset=utf-8";
      context.render_status(prometheus, response.body);
      return {};
    }
    case RouteId::kPing:
      return Ping(trace_id, context, response);
  }
  return Fail(ErrorCode::kResourceNotFound);
}

}  // namespace

void Handle(const Request& request, std::string_view trace_id, PipelineContext& context, Response& response) {
  response.Reset();
  auto done = Dispatch(request, trace_id, context, response);
  if (!done) SetError(response, done.error(), trace_id, context.retry_after_seconds);
}

}  // namespace music_api
