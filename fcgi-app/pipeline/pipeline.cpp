// The request, start to end: route → authenticate → params → query (with its own re-check) → render.
#include "pipeline/pipeline.hpp"

#include <ctime>

#include "auth/auth.hpp"
#include "core/media_keys.hpp"
#include "http/idempotency_key.hpp"
#include "http/json_writer.hpp"
#include "http/page_links.hpp"
#include "http/query_params.hpp"
#include "http/render.hpp"
#include "http/route.hpp"
#include "pipeline/caller.hpp"
#include "pipeline/idempotency.hpp"
#include "pipeline/routes.hpp"

namespace music_api {

Result<Caller> Authenticate(const ApiKeyParts& key, std::string_view presented_hash,
                            const std::optional<std::string>& org_id, bool use_cache, bool on_primary, int64_t now,
                            std::string_view trace_id, PipelineContext& context, Response& response) {
  const std::string& org = org_id ? *org_id : std::string();
  if (use_cache && !on_primary && org_id) {
    if (const KeyRecord* cached = context.auth_cache.Find(key.id, org)) {
      // Hash, revocation flag and expiry are judged again on every request, even from the cache.
      auto user_id = Authorize(*cached, presented_hash, true, now);
      if (user_id) {
        response.auth = "cache";
        return Caller{std::move(*user_id), AuthSource::kCache};
      }
    }
  }
  if (!on_primary && context.auth_cache.KnownUnknown(key.id, now)) {
    response.auth = "unknown_cache";
    return Fail(ErrorCode::kInvalidApiKey);
  }
  response.auth = on_primary ? "primary" : "db";
  auto record = context.database.FindKey(key.id, org, trace_id, on_primary);
  if (!record) return Fail(record.error());
  if (!*record) context.auth_cache.RememberUnknown(key.id, now);
  auto user_id = Authorize(*record, presented_hash, org_id.has_value(), now);
  if (!user_id) return Fail(user_id.error());
  context.auth_cache.Remember(key.id, org, **record);
  return Caller{std::move(*user_id), AuthSource::kDatabase};
}

Result<PresentedKey> ReadPresentedKey(const Request& request, PipelineContext& context) {
  auto presented = PresentedApiKey(request.x_api_key, request.authorization);
  if (!presented) return Fail(ErrorCode::kAuthenticationRequired);
  // A string that cannot be a key is refused without a database round trip.
  auto key = ParseApiKey(*presented);
  if (!key) return Fail(ErrorCode::kInvalidApiKey);
  std::string hash = HashApiKeySecret(context.pepper, *key);
  const uint64_t generation = context.auth_generation ? context.auth_generation->load(std::memory_order_acquire) : 0;
  const bool reopened = context.database.AuthChanged();
  if (reopened || generation != context.auth_generation_seen) {
    context.auth_cache.Clear();
    context.auth_generation_seen = generation;
  }
  return PresentedKey{std::move(*key), std::move(hash), static_cast<int64_t>(std::time(nullptr))};
}

namespace {

ApiError TrackNotFound() { return ApiError{ErrorCode::kResourceNotFound, "Track not found", {}, {}}; }

Result<void> ListSavedTracks(const Request& request, const Route& route, std::string_view trace_id,
                             PipelineContext& context, Response& response) {
  ListParams params;
  auto listing = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    auto parsed = ParseListParams(request.query);
    if (!parsed) return Result<Listing>(Fail(parsed.error()));
    params = std::move(*parsed);
    return context.database.ListTracks(caller, params, trace_id);
  });
  if (!listing) return Fail(listing.error());
  // Missing and someone else's collection get the same 404: no existence leak.
  if (!listing->collection_ok) return Fail(ApiError{ErrorCode::kResourceNotFound, "Collection not found", {}, {}});
  response.rows = listing->page->size();
  RenderTrackPage(*listing->page, params.limit, params.offset, response.body);
  // A page may be kept and revalidated by the client that fetched it: decided only here, after
  // authentication and the statement's own check, so a revoked key never gets a 304.
  response.cache_control = kRevalidate;
  response.vary_on_key = true;
  response.etag = WeakEtag(response.body);
  AppendPageLinks(response.link, *route.organization_id, params, listing->has_next);
  if (!request.if_none_match.empty() && IfNoneMatch(request.if_none_match, response.etag)) {
    response.status = 304;
    response.body.clear();
  }
  return {};
}

// The signed URLs of a track's files, as the JSON values RenderTrack puts in.
struct SignedUrls {
  std::string playback = "null";
  std::string stems = "null";
};

SignedUrls SignTrackFiles(const TrackDetail& detail, std::string_view track_id, const Request& request, int64_t now,
                          const PipelineContext& context) {
  SignedUrls urls;
  const std::string base = PublicBase(request, context);
  for (const auto& file : detail.files) {
    std::string url = SignedUrlJson(context, base, track_id, file.file_name, now);
    if (file.name == "master") {
      urls.playback = std::move(url);
      continue;
    }
    if (urls.stems == "null") {
      urls.stems = "{";
    } else {
      urls.stems.push_back(',');
    }
    AppendJsonString(urls.stems, file.name);
    urls.stems.push_back(':');
    urls.stems.append(url);
  }
  if (urls.stems != "null") urls.stems.push_back('}');
  return urls;
}

Result<void> GetTrack(const Request& request, const Route& route, std::string_view trace_id, PipelineContext& context,
                      Response& response) {
  auto detail = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.track_id) return Result<TrackDetail>(Fail(TrackNotFound()));
    return context.database.GetTrack(caller, *route.track_id, trace_id);
  });
  if (!detail) return Fail(detail.error());
  // Missing, another org's, deleted and not the caller's: one 404.
  if (detail->track->size() != 1) return Fail(TrackNotFound());
  const int64_t now = static_cast<int64_t>(std::time(nullptr));
  SignedUrls urls = SignTrackFiles(*detail, *route.track_id, request, now, context);
  response.rows = 1;
  RenderTrack(*detail->track, 0, TrackUrls{urls.playback, urls.stems}, response.body);
  return {};  // Cache-Control stays no-store: the URLs are credentials
}

Result<void> SaveTrack(const Request& request, const Route& route, std::string_view trace_id, PipelineContext& context,
                       Response& response) {
  auto saved = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.track_id) return Result<SaveOutcome>(Fail(TrackNotFound()));
    return context.database.SaveTrack(caller, *route.track_id, trace_id);
  });
  if (!saved) return Fail(saved.error());
  if (!saved->visible) return Fail(TrackNotFound());
  // Visible yet no entry: neither the caller's own track nor in their library (only a share link
  // can add someone else's), or a save that raced past every retry.
  if (!saved->entry) return Fail(TrackNotFound());
  RenderLibraryEntry(saved->entry->id, *route.track_id, saved->entry->source, saved->entry->created_at, response.body);
  return {};
}

Result<void> UnsaveTrack(const Request& request, const Route& route, std::string_view trace_id,
                         PipelineContext& context, Response& response) {
  auto unsaved = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.track_id) return Result<UnsaveOutcome>(Fail(TrackNotFound()));
    return context.database.UnsaveTrack(caller, *route.track_id, trace_id);
  });
  if (!unsaved) return Fail(unsaved.error());
  // The same answer whether the track was saved, never saved, or does not exist: idempotent,
  // and nothing to learn about other people's tracks.
  RenderAcknowledgement(*route.track_id, "Track removed from library.", response.body);
  return {};
}

Result<void> DeleteTrack(const Request& request, const Route& route, std::string_view trace_id,
                         PipelineContext& context, Response& response) {
  auto deleted = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.track_id) return Result<DeleteOutcome>(Fail(TrackNotFound()));
    return context.database.DeleteTrack(caller, *route.track_id, trace_id);
  });
  if (!deleted) return Fail(deleted.error());
  if (!deleted->visible) return Fail(TrackNotFound());
  if (!deleted->creator) {
    return Fail(ApiError{ErrorCode::kInsufficientPermissions, "Only the track's creator may delete it", {}, {}});
  }
  RenderAcknowledgement(*route.track_id, "Track deleted.", response.body);
  return {};
}

// The host-only health check: healthy means a database round trip works from this worker.
Result<void> Ping(std::string_view trace_id, PipelineContext& context, Response& response) {
  auto ping = context.database.Ping(trace_id);
  if (!ping || !*ping) return Fail(ErrorCode::kServiceUnavailable);
  response.body = R"({"status":"ok","database":"ok"})";
  return {};
}

Result<void> Status(const Request& request, const Route&, std::string_view, PipelineContext& context,
                    Response& response) {
  bool prometheus = request.query.find("format=prometheus") != std::string_view::npos;
  if (prometheus) response.content_type = "text/plain; version=0.0.4; charset=utf-8";
  context.render_status(prometheus, response.body);
  return {};
}

Result<void> PingRoute(const Request&, const Route&, std::string_view trace_id, PipelineContext& context,
                       Response& response) {
  return Ping(trace_id, context, response);
}

// Liveness: this worker takes requests. No SQL, so a database outage never marks the host dead
// (readiness, /music-api/ready, is the one that asks the database).
Result<void> LiveRoute(const Request&, const Route&, std::string_view, PipelineContext&, Response& response) {
  response.body = R"({"status":"ok"})";
  return {};
}

// Which handler answers a route and method (HEAD is GET without the body; the route table has
// already refused the methods a route does not answer).
struct HandlerRow {
  RouteId route;
  std::string_view method;
  RouteHandler handle;
  std::string_view name;  // the metrics' route label
};

constexpr HandlerRow kHandlers[] = {
    {RouteId::kListTracks, "GET", ListSavedTracks, "list_tracks"},
    {RouteId::kTrack, "GET", GetTrack, "get_track"},
    {RouteId::kTrack, "DELETE", DeleteTrack, "delete_track"},
    {RouteId::kTrackSave, "POST", SaveTrack, "save_track"},
    {RouteId::kTrackSave, "DELETE", UnsaveTrack, "unsave_track"},
    {RouteId::kTrackShare, "POST", ShareTrack, "share_track"},
    {RouteId::kCollections, "GET", ListCollections, "list_collections"},
    {RouteId::kCollections, "POST", CreateCollection, "create_collection"},
    {RouteId::kCollection, "GET", GetCollection, "get_collection"},
    {RouteId::kCollection, "PATCH", UpdateCollection, "update_collection"},
    {RouteId::kCollection, "DELETE", DeleteCollection, "delete_collection"},
    {RouteId::kCollectionTracks, "GET", ListCollectionEntries, "list_collection_tracks"},
    {RouteId::kCollectionTracks, "POST", AddToCollection, "add_collection_track"},
    {RouteId::kCollectionTrack, "DELETE", RemoveFromCollection, "remove_collection_track"},
    {RouteId::kCollectionOrder, "PATCH", ReorderCollection, "reorder_collection"},
    {RouteId::kShare, "DELETE", RevokeShare, "revoke_share"},
    {RouteId::kSharedLink, "GET", ResolveShare, "open_shared_link"},
    {RouteId::kSharedSave, "POST", SaveShared, "save_shared"},
    {RouteId::kStatus, "GET", Status, "status"},
    {RouteId::kPing, "GET", PingRoute, "ready"},
    {RouteId::kLive, "GET", LiveRoute, "live"},
};
static_assert(std::size(kHandlers) + 1 == kHandlerNames, "kHandlerNames counts the rows and \"none\"");

Result<void> Dispatch(const Request& request, std::string_view trace_id, PipelineContext& context, Response& response) {
  auto route = MatchRoute(request);
  if (!route) return Fail(route.error());
  const std::string_view method = request.method == "HEAD" ? std::string_view("GET") : request.method;
  for (const HandlerRow& row : kHandlers) {
    if (row.route != route->id || row.method != method) continue;
    response.handler = static_cast<int>(&row - kHandlers) + 1;
    if (request.idempotency_key && TakesIdempotencyKey(method)) {
      return RunIdempotent(request, *route, row.handle, trace_id, context, response);
    }
    return row.handle(request, *route, trace_id, context, response);
  }
  return Fail(ErrorCode::kInternalError);  // a route row without its handler: a bug
}

}  // namespace

std::string_view HandlerName(int handler) {
  return handler >= 1 && handler < kHandlerNames ? kHandlers[handler - 1].name : std::string_view("none");
}

std::string PublicBase(const Request&, const PipelineContext& context) {
  // media_base_url alone (never empty: the loader refuses it), never the request's Host header.
  return context.media_signer->base_url;
}

std::string SignedUrlJson(const PipelineContext& context, std::string_view base, std::string_view track_id,
                          std::string_view file_name, int64_t now) {
  const MediaSigner& signer = *context.media_signer;
  std::string url, json;
  AppendSignedMediaUrl(url, signer, base, track_id, file_name, now + signer.ttl_seconds);
  AppendJsonString(json, url);
  return json;
}

void Handle(const Request& request, std::string_view trace_id, PipelineContext& context, Response& response) {
  response.Reset();
  auto done = Dispatch(request, trace_id, context, response);
  if (!done) SetError(response, done.error(), trace_id, context.retry_after_seconds);
}

}  // namespace music_api
