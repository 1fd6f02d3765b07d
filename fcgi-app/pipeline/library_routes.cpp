// Collections and share links: each handler authenticates through AsCaller, reads its body with
// JsonBody, runs one statement (which re-checks the caller) and renders the answer.
#include <ctime>

#include "core/log.hpp"
#include "core/secrets.hpp"
#include "core/text.hpp"
#include "http/json_body.hpp"
#include "http/json_writer.hpp"
#include "http/query_params.hpp"
#include "http/render.hpp"
#include "pipeline/caller.hpp"
#include "pipeline/routes.hpp"

namespace music_api {
namespace {

constexpr int kCollectionsDefaultLimit = 50, kCollectionsMaxLimit = 100;
constexpr int kEntriesDefaultLimit = 200, kEntriesMaxLimit = 500;
constexpr size_t kMaxNameCharacters = 512, kMaxDescriptionCharacters = 2000, kMaxImageUrlCharacters = 1024;
constexpr int64_t kMaxShareDays = 90;
// The licence terms a share shows beside the track's licence class (the vendor's tiers).
constexpr std::string_view kLicenceVersion = "2026-01";

ApiError NotFound(std::string why) { return ApiError{ErrorCode::kResourceNotFound, std::move(why), {}, {}}; }
ApiError CollectionNotFound() { return NotFound("Collection not found"); }
// Unknown, revoked, expired and (for a save) not the caller's org: one answer.
ApiError ShareNotFound() { return NotFound("Share link not found"); }

// Control characters other than the two a multi-line text may hold.
bool HasControlExceptNewlineAndTab(std::string_view text) {
  std::string stripped;
  for (char c : text) {
    if (c != '\n' && c != '\t') stripped.push_back(c);
  }
  return HasControlCharacter(stripped);
}

bool IsHttpUrl(std::string_view url) {
  std::string_view rest;
  if (url.starts_with("https://")) {
    rest = url.substr(8);
  } else if (url.starts_with("http://")) {
    rest = url.substr(7);
  } else {
    return false;
  }
  if (rest.empty() || rest.front() == '/') return false;
  for (char c : url) {
    if (c == ' ' || static_cast<unsigned char>(c) < 0x21 || c == 0x7F) return false;
  }
  return !HasControlCharacter(url);
}

// The collection fields a body sets (create: `name` required; update: all optional).
Result<CollectionFields> ReadCollectionFields(const JsonBody& body, bool creating) {
  CollectionFields fields;
  auto name = body.String("name");
  if (!name) return Fail(name.error());
  if (name->presence == JsonBody::Presence::kValue) {
    size_t n = CountCharacters(name->value);
    if (n < 1 || n > kMaxNameCharacters || HasControlCharacter(name->value)) {
      return Fail(ApiError::Validation("name", "name must be 1 to 512 characters without control characters"));
    }
    fields.name = std::move(name->value);
  } else if (name->presence == JsonBody::Presence::kNull || creating) {
    return Fail(ApiError::Validation("name", "name is required: a string of 1 to 512 characters"));
  }
  auto description = body.String("description");
  if (!description) return Fail(description.error());
  if (description->presence == JsonBody::Presence::kValue) {
    if (CountCharacters(description->value) > kMaxDescriptionCharacters ||
        HasControlExceptNewlineAndTab(description->value)) {
      return Fail(ApiError::Validation("description",
                                       "description must be at most 2000 characters, no control characters but "
                                       "newline and tab"));
    }
    fields.description = std::optional<std::string>(std::move(description->value));
  } else if (description->presence == JsonBody::Presence::kNull) {
    fields.description = std::optional<std::string>();
  }
  auto cover = body.String("cover_track_id");
  if (!cover) return Fail(cover.error());
  if (cover->presence == JsonBody::Presence::kValue) {
    if (!IsResourceId(cover->value, "mtrack_")) {
      return Fail(ApiError::Validation("cover_track_id", "cover_track_id must be a track id (mtrack_…)"));
    }
    fields.cover_track_id = std::optional<std::string>(std::move(cover->value));
  } else if (cover->presence == JsonBody::Presence::kNull) {
    fields.cover_track_id = std::optional<std::string>();
  }
  auto image = body.String("cover_image_url");
  if (!image) return Fail(image.error());
  if (image->presence == JsonBody::Presence::kValue) {
    if (CountCharacters(image->value) > kMaxImageUrlCharacters || !IsHttpUrl(image->value)) {
      return Fail(
          ApiError::Validation("cover_image_url", "cover_image_url must be an http(s) URL of at most 1024 characters"));
    }
    fields.cover_image_url = std::optional<std::string>(std::move(image->value));
  } else if (image->presence == JsonBody::Presence::kNull) {
    fields.cover_image_url = std::optional<std::string>();
  }
  return fields;
}

ApiError CoverNotFound() {
  return ApiError::Validation("cover_track_id", "cover_track_id must be a track you created or saved here");
}

void Acknowledge(Response& response, std::string_view id, std::string_view detail) {
  RenderAcknowledgement(id, detail, response.body);
}

// Logged for every resolve (the vendor's "audited"): the link id, never the token.
void AuditResolve(const Request& request, std::string_view trace_id, std::string_view link_id,
                  std::string_view outcome) {
  Log("info", "share_resolved",
      {{"trace_id", trace_id},
       {"link_id", link_id.empty() ? std::string_view("-") : link_id},
       {"client", request.remote_addr.empty() ? std::string_view("-") : request.remote_addr},
       {"outcome", outcome}});
}

}  // namespace

Result<void> ListCollections(const Request& request, const Route& route, std::string_view trace_id,
                             PipelineContext& context, Response& response) {
  PageParams page{};
  auto list = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    auto parsed = ParsePageParams(request.query, kCollectionsDefaultLimit, kCollectionsMaxLimit);
    if (!parsed) return Result<CollectionList>(Fail(parsed.error()));
    page = *parsed;
    return context.database.ListCollections(caller, page.limit, page.offset, trace_id);
  });
  if (!list) return Fail(list.error());
  response.rows = list->items.size();
  RenderCollectionPage(list->items, page.limit, page.offset, response.body);
  return {};
}

Result<void> CreateCollection(const Request& request, const Route& route, std::string_view trace_id,
                              PipelineContext& context, Response& response) {
  auto made = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    auto body = JsonBody::Parse(request.content_type, request.body, false);
    if (!body) return Result<CollectionOutcome>(Fail(body.error()));
    auto fields = ReadCollectionFields(*body, true);
    if (!fields) return Result<CollectionOutcome>(Fail(fields.error()));
    return context.database.CreateCollection(caller, NewResourceId("mcoll_"), *fields, trace_id);
  });
  if (!made) return Fail(made.error());
  if (!made->cover_ok) return Fail(CoverNotFound());
  if (!made->collection) return Fail(ErrorCode::kServiceUnavailable);  // raced past its own check: retry
  response.status = 201;
  RenderCollection(*made->collection, response.body);
  return {};
}

Result<void> GetCollection(const Request& request, const Route& route, std::string_view trace_id,
                           PipelineContext& context, Response& response) {
  auto got = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.collection_id) return Result<CollectionOutcome>(Fail(CollectionNotFound()));
    return context.database.GetCollection(caller, *route.collection_id, trace_id);
  });
  if (!got) return Fail(got.error());
  if (!got->collection) return Fail(CollectionNotFound());
  RenderCollection(*got->collection, response.body);
  return {};
}

Result<void> UpdateCollection(const Request& request, const Route& route, std::string_view trace_id,
                              PipelineContext& context, Response& response) {
  auto changed = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.collection_id) return Result<CollectionOutcome>(Fail(CollectionNotFound()));
    auto body = JsonBody::Parse(request.content_type, request.body, false);
    if (!body) return Result<CollectionOutcome>(Fail(body.error()));
    auto fields = ReadCollectionFields(*body, false);
    if (!fields) return Result<CollectionOutcome>(Fail(fields.error()));
    return context.database.UpdateCollection(caller, *route.collection_id, *fields, trace_id);
  });
  if (!changed) return Fail(changed.error());
  if (!changed->found) return Fail(CollectionNotFound());
  if (!changed->cover_ok) return Fail(CoverNotFound());
  if (!changed->collection) return Fail(CollectionNotFound());  // deleted meanwhile
  RenderCollection(*changed->collection, response.body);
  return {};
}

Result<void> DeleteCollection(const Request& request, const Route& route, std::string_view trace_id,
                              PipelineContext& context, Response& response) {
  auto gone = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.collection_id) return Result<DeletedOutcome>(Fail(CollectionNotFound()));
    return context.database.DeleteCollection(caller, *route.collection_id, trace_id);
  });
  if (!gone) return Fail(gone.error());
  if (!gone->found) return Fail(CollectionNotFound());
  Acknowledge(response, *route.collection_id, "Collection deleted.");
  return {};
}

Result<void> ListCollectionEntries(const Request& request, const Route& route, std::string_view trace_id,
                                   PipelineContext& context, Response& response) {
  PageParams page{};
  auto entries = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.collection_id) return Result<CollectionEntries>(Fail(CollectionNotFound()));
    auto parsed = ParsePageParams(request.query, kEntriesDefaultLimit, kEntriesMaxLimit);
    if (!parsed) return Result<CollectionEntries>(Fail(parsed.error()));
    page = *parsed;
    return context.database.ListCollectionEntries(caller, *route.collection_id, page.limit, page.offset, trace_id);
  });
  if (!entries) return Fail(entries.error());
  if (!entries->found) return Fail(CollectionNotFound());
  response.rows = entries->items.size();
  RenderCollectionEntries(*route.collection_id, entries->items, page.limit, page.offset, response.body);
  return {};
}

Result<void> AddToCollection(const Request& request, const Route& route, std::string_view trace_id,
                             PipelineContext& context, Response& response) {
  std::string track_id;
  auto added = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.collection_id) return Result<EntryOutcome>(Fail(CollectionNotFound()));
    auto body = JsonBody::Parse(request.content_type, request.body, false);
    if (!body) return Result<EntryOutcome>(Fail(body.error()));
    auto track = body->String("track_id");
    if (!track) return Result<EntryOutcome>(Fail(track.error()));
    if (track->presence != JsonBody::Presence::kValue) {
      return Result<EntryOutcome>(Fail(ApiError::Validation("track_id", "track_id is required (mtrack_…)")));
    }
    track_id = std::move(track->value);
    return context.database.AddToCollection(caller, *route.collection_id, track_id, trace_id);
  });
  if (!added) return Fail(added.error());
  if (!added->verdict) return Fail(CollectionNotFound());
  if (*added->verdict == "no_track") return Fail(NotFound("Track not found"));
  Acknowledge(response, track_id, "Track added to collection.");
  return {};
}

Result<void> RemoveFromCollection(const Request& request, const Route& route, std::string_view trace_id,
                                  PipelineContext& context, Response& response) {
  auto removed = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.collection_id) return Result<EntryOutcome>(Fail(CollectionNotFound()));
    // Not a track id at all: a 404 like on every route (whoever's the collection is).
    if (!route.track_id) return Result<EntryOutcome>(Fail(NotFound("Track not found")));
    return context.database.RemoveFromCollection(caller, *route.collection_id, *route.track_id, trace_id);
  });
  if (!removed) return Fail(removed.error());
  if (!removed->verdict) return Fail(CollectionNotFound());
  Acknowledge(response, *route.track_id, "Track removed from collection.");
  return {};
}

Result<void> ReorderCollection(const Request& request, const Route& route, std::string_view trace_id,
                               PipelineContext& context, Response& response) {
  auto reordered = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.collection_id) return Result<EntryOutcome>(Fail(CollectionNotFound()));
    auto body = JsonBody::Parse(request.content_type, request.body, false);
    if (!body) return Result<EntryOutcome>(Fail(body.error()));
    auto ids = body->StringArray("ordered_track_ids");
    if (!ids) return Result<EntryOutcome>(Fail(ids.error()));
    // Ids that are not track ids cannot be in the collection: ignored, like unknown ones.
    std::vector<std::string> track_ids;
    for (auto& id : *ids) {
      if (IsResourceId(id, "mtrack_")) track_ids.push_back(std::move(id));
    }
    return context.database.ReorderCollection(caller, *route.collection_id, track_ids, trace_id);
  });
  if (!reordered) return Fail(reordered.error());
  if (!reordered->verdict) return Fail(CollectionNotFound());
  Acknowledge(response, *route.collection_id, "Collection reordered.");
  return {};
}

Result<void> ShareTrack(const Request& request, const Route& route, std::string_view trace_id, PipelineContext& context,
                        Response& response) {
  const std::string token = NewShareToken();
  auto shared = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.track_id) return Result<ShareOutcome>(Fail(NotFound("Track not found")));
    auto body = JsonBody::Parse(request.content_type, request.body, true);
    if (!body) return Result<ShareOutcome>(Fail(body.error()));
    auto visibility = body->String("visibility");
    if (!visibility) return Result<ShareOutcome>(Fail(visibility.error()));
    std::string chosen = "link_only";
    if (visibility->presence == JsonBody::Presence::kValue) {
      if (visibility->value != "link_only" && visibility->value != "public") {
        return Result<ShareOutcome>(Fail(ApiError::Validation("visibility", "visibility must be link_only or public")));
      }
      chosen = visibility->value;
    }
    auto days = body->Int("expires_in_days");
    if (!days) return Result<ShareOutcome>(Fail(days.error()));
    std::optional<int> expires_in_days;
    if (days->presence == JsonBody::Presence::kValue) {
      if (days->value < 1) {
        return Result<ShareOutcome>(
            Fail(ApiError::Validation("expires_in_days", "expires_in_days must be an integer of at least 1")));
      }
      expires_in_days = static_cast<int>(std::min(days->value, kMaxShareDays));  // above 90: 90
    }
    return context.database.CreateShare(caller, *route.track_id, NewResourceId("mslink_"),
                                        HashShareToken(context.pepper, token), chosen, expires_in_days, trace_id);
  });
  if (!shared) return Fail(shared.error());
  // Only the creator may share: anyone else (who may see it or not) gets the missing track's 404.
  if (!shared->link) return Fail(NotFound("Track not found"));
  response.status = 201;
  RenderShareCreated(*shared->link, token, PublicBase(request, context) + "/v1/music/shared/" + token, response.body);
  return {};
}

Result<void> RevokeShare(const Request& request, const Route& route, std::string_view trace_id,
                         PipelineContext& context, Response& response) {
  auto revoked = AsCaller(request, route, trace_id, context, response, [&](const CheckedCaller& caller) {
    if (!route.share_id) return Result<DeletedOutcome>(Fail(ShareNotFound()));
    return context.database.RevokeShare(caller, *route.share_id, trace_id);
  });
  if (!revoked) return Fail(revoked.error());
  if (!revoked->found) return Fail(ShareNotFound());
  Acknowledge(response, *route.share_id, "Share link revoked.");
  return {};
}

Result<void> ResolveShare(const Request& request, const Route& route, std::string_view trace_id,
                          PipelineContext& context, Response& response) {
  if (!route.token) {
    AuditResolve(request, trace_id, {}, "not_found");
    return Fail(ShareNotFound());
  }
  // One statement for every token: a live link's row or none, so an unknown and a revoked token
  // cost the same (the lookup is by the keyed hash, through the unique index).
  auto share = context.database.ResolveShare(HashShareToken(context.pepper, *route.token), trace_id);
  if (!share) return Fail(share.error());
  if (!*share || (*share)->target_type != "track") {
    AuditResolve(request, trace_id, {}, "not_found");
    return Fail(ShareNotFound());
  }
  const ResolvedShare& s = **share;
  if (s.track_deleted) {
    AuditResolve(request, trace_id, s.link_id, "unavailable");
    RenderSharedLink(s.target_type, s.visibility, s.expires_at, nullptr,
                     "The creator removed this track; it is no longer available.", response.body);
    return {};
  }
  std::string playback = "null";
  if (s.master_file) {
    playback = SignedUrlJson(context, PublicBase(request, context), s.track.id[0], *s.master_file,
                             static_cast<int64_t>(std::time(nullptr)));
  }
  const bool commercial = s.track.licence_class[0].starts_with("commercial_");
  SharedTrackView view{&s.track, playback, kLicenceVersion, commercial, !commercial};
  AuditResolve(request, trace_id, s.link_id, "ok");
  RenderSharedLink(s.target_type, s.visibility, s.expires_at, &view, {}, response.body);
  return {};
}

Result<void> SaveShared(const Request& request, const Route& route, std::string_view trace_id, PipelineContext& context,
                        Response& response) {
  // The key first (401 before anything about the link), then the link, whose org is the one the
  // caller must belong to.
  if (!PresentedApiKey(request.x_api_key, request.authorization)) return Fail(ErrorCode::kAuthenticationRequired);
  std::string token_hash;
  std::optional<ResolvedShare> live;
  if (route.token) {
    token_hash = HashShareToken(context.pepper, *route.token);
    auto share = context.database.ResolveShare(token_hash, trace_id);
    if (!share) return Fail(share.error());
    if (*share && (*share)->target_type == "track" && !(*share)->track_deleted) live = std::move(**share);
  }
  // The key is judged either way (a bad key is a 401 whatever the link), in the link's org when it
  // lives; without one no org is named, so a good key ends at the org check: the dead link's 404.
  Route in_org = route;
  in_org.organization_id = live ? std::optional<std::string>(live->org_id) : std::nullopt;
  auto saved = AsCaller(request, in_org, trace_id, context, response, [&](const CheckedCaller& caller) {
    return context.database.SaveShared(caller, token_hash, trace_id);
  });
  if (!saved) {
    // Not a member of the track's organization: the same answer as a dead link.
    if (saved.error().code == ErrorCode::kOrganizationAccessDenied) return Fail(ShareNotFound());
    return Fail(saved.error());
  }
  if (!saved->entry) return Fail(ShareNotFound());
  response.status = 201;
  RenderSharedSave(saved->entry->id, saved->track_id, saved->entry->source, saved->share_link_id,
                   saved->entry->created_at, response.body);
  return {};
}

}  // namespace music_api
