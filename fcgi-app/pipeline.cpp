// The request, start to end: route → authenticate → params → collection → query → render.
#include "pipeline.hpp"

#include "http/auth.hpp"
#include "http/query_params.hpp"
#include "http/render.hpp"
#include "http/route.hpp"

namespace music_api {
namespace {

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

  const std::string& org_id = route->organization_id ? *route->organization_id : std::string();
  auto record = context.database.FindKey(key->id, org_id, trace_id);
  if (!record) return Fail(record.error());
  auto user_id = Authorize(*record, *key, context.pepper, route->organization_id.has_value());
  if (!user_id) return Fail(user_id.error());

  auto params = ParseListParams(request.query);
  if (!params) return Fail(params.error());

  if (params->collection_id) {
    // Missing and someone else's collection get the same 404: no existence leak.
    auto owned = context.database.CollectionOwned(*params->collection_id, org_id, *user_id, trace_id);
    if (!owned) return Fail(owned.error());
    if (!*owned) return Fail(ApiError{ErrorCode::kResourceNotFound, "Collection not found", {}});
  }

  auto tracks = context.database.ListTracks(org_id, *user_id, *params, trace_id);
  if (!tracks) return Fail(tracks.error());
  return Page{*tracks, params->limit, params->offset};
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
