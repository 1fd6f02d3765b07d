// The request, start to end: route → authenticate → params → query (with its own re-check) → render.
#include "pipeline.hpp"

#include <ctime>

#include "http/auth.hpp"
#include "http/query_params.hpp"
#include "http/render.hpp"
#include "http/route.hpp"

namespace music_api {
namespace {

struct Caller {
  std::string user_id;
  bool from_cache;
};

// The key and org access, from the worker's cache when it holds a past success, else the database.
Result<Caller> Authenticate(const ApiKeyParts& key, const std::optional<std::string>& org_id, bool use_cache,
                            std::string_view trace_id, PipelineContext& context) {
  const std::string& org = org_id ? *org_id : std::string();
  int64_t now = static_cast<int64_t>(std::time(nullptr));
  if (use_cache && org_id) {
    if (const KeyRecord* cached = context.auth_cache.Find(key.id, org)) {
      // Hash, revocation flag and expiry are judged again on every request, even from the cache.
      auto user_id = Authorize(*cached, key, context.pepper, true, now);
      if (user_id) return Caller{std::move(*user_id), true};
    }
  }
  auto record = context.database.FindKey(key.id, org, trace_id);
  if (!record) return Fail(record.error());
  auto user_id = Authorize(*record, key, context.pepper, org_id.has_value(), now);
  if (!user_id) return Fail(user_id.error());
  context.auth_cache.Remember(key.id, org, **record);
  return Caller{std::move(*user_id), false};
}

struct Page {
  const TrackPage* tracks;
  int limit;
  int64_t offset;
};

Result<Page> ListSavedTracks(const Request& request, std::string_view trace_id, PipelineContext& context) {
  auto route = MatchRoute(request.method, request.Path());
  if (!route) return Fail(route.error());

  auto presented = PresentedApiKey(request.x_api_key, request.authorization);
  if (!presented) return Fail(ErrorCode::kAuthenticationRequired);
  // A string that cannot be a key is refused without a database round trip.
  auto key = ParseApiKey(*presented);
  if (!key) return Fail(ErrorCode::kInvalidApiKey);

  if (context.database.AuthChanged()) context.auth_cache.Clear();
  bool use_cache = true;
  for (;;) {
    auto caller = Authenticate(*key, route->organization_id, use_cache, trace_id, context);
    if (!caller) return Fail(caller.error());

    auto params = ParseListParams(request.query);
    if (!params) return Fail(params.error());

    const std::string& org_id = *route->organization_id;
    auto listing = context.database.ListTracks(key->id, org_id, caller->user_id, *params, trace_id);
    if (!listing) return Fail(listing.error());
    if (!listing->auth_ok) {
      // The statement's own check disagrees with what we knew (a change not yet notified):
      // forget it and decide again from the database, which answers with the right error.
      context.auth_cache.Forget(key->id, org_id);
      if (caller->from_cache) {
        use_cache = false;
        continue;
      }
      return Fail(ErrorCode::kServiceUnavailable);  // changed again within this request: let it retry
    }
    // Missing and someone else's collection get the same 404: no existence leak.
    if (!listing->collection_ok) return Fail(ApiError{ErrorCode::kResourceNotFound, "Collection not found", {}});
    return Page{listing->page, params->limit, params->offset};
  }
}

}  // namespace

void Handle(const Request& request, std::string_view trace_id, PipelineContext& context, Response& response) {
  auto page = ListSavedTracks(request, trace_id, context);
  if (!page) {
    SetError(response, page.error(), trace_id, context.retry_after_seconds);
    return;
  }
  response.status = 200;
  response.content_type = kJsonContentType;
  response.error.reset();
  response.retry_after_seconds = 0;
  response.rows = page->tracks->size();
  response.body.clear();
  RenderTrackPage(*page->tracks, page->limit, page->offset, response.body);
}

}  // namespace music_api
