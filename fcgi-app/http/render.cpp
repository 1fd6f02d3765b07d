// JSON bodies: the page of tracks and the error envelope, in the spec's key order.
#include "http/render.hpp"

#include "core/time.hpp"
#include "http/json_writer.hpp"

namespace music_api {

namespace {

// "id", "title", "engine", "mode", "measured_duration_seconds", "instrumental" of row i: the
// fields a track object and a share link's track share, in that order.
void AppendTrackFields(const TrackPage& page, size_t i, std::string& out) {
  out.append("\"id\":");
  AppendJsonString(out, page.id[i]);
  out.append(",\"title\":");
  if (page.title_null[i]) {
    out.append("null");
  } else {
    AppendJsonString(out, page.title[i]);
  }
  out.append(",\"engine\":");
  AppendJsonString(out, page.engine[i]);
  out.append(",\"mode\":");
  AppendJsonString(out, page.mode[i]);
  out.append(",\"measured_duration_seconds\":");
  if (page.duration_null[i]) {
    out.append("null");
  } else {
    AppendJsonNumber(out, page.duration[i]);
  }
  out.append(",\"instrumental\":").append(page.instrumental[i] ? "true" : "false");
}

}  // namespace

void RenderTrack(const TrackPage& page, size_t i, const TrackUrls& urls, std::string& out) {
  out.push_back('{');
  AppendTrackFields(page, i, out);
  out.append(",\"licence_class\":");
  AppendJsonString(out, page.licence_class[i]);
  out.append(",\"created_at\":\"");
  AppendUtc(out, page.created_at[i]);
  out.append("\",\"playback_url\":").append(urls.playback_url_json);
  out.append(",\"stem_urls\":").append(urls.stem_urls_json).push_back('}');
}

void RenderTrackPage(const TrackPage& page, int limit, int64_t offset, std::string& out) {
  out.append("{\"items\":[");
  for (size_t i = 0; i < page.size(); ++i) {
    if (i) out.push_back(',');
    RenderTrack(page, i, TrackUrls{}, out);  // the list never carries URLs
  }
  out.append("],\"limit\":");
  AppendJsonInteger(out, limit);
  out.append(",\"offset\":");
  AppendJsonInteger(out, offset);
  out.push_back('}');
}

void RenderLibraryEntry(std::string_view entry_id, std::string_view track_id, std::string_view source,
                        int64_t created_at, std::string& out) {
  out.append("{\"id\":");
  AppendJsonString(out, entry_id);
  out.append(",\"track_id\":");
  AppendJsonString(out, track_id);
  out.append(",\"source\":");
  AppendJsonString(out, source);
  out.append(",\"created_at\":\"");
  AppendUtc(out, created_at);
  out.append("\",\"saved\":true}");
}

void RenderAcknowledgement(std::string_view id, std::string_view detail, std::string& out) {
  out.append("{\"success\":true,\"id\":");
  AppendJsonString(out, id);
  out.append(",\"detail\":");
  AppendJsonString(out, detail);
  out.push_back('}');
}

namespace {

void AppendOptionalString(std::string& out, const std::optional<std::string>& value) {
  if (value) {
    AppendJsonString(out, *value);
  } else {
    out.append("null");
  }
}

void AppendTime(std::string& out, int64_t unix_seconds) {
  out.push_back('"');
  AppendUtc(out, unix_seconds);
  out.push_back('"');
}

void AppendOptionalTime(std::string& out, std::optional<int64_t> unix_seconds) {
  if (unix_seconds) {
    AppendTime(out, *unix_seconds);
  } else {
    out.append("null");
  }
}

void AppendWindow(std::string& out, int limit, int64_t offset) {
  out.append(",\"limit\":");
  AppendJsonInteger(out, limit);
  out.append(",\"offset\":");
  AppendJsonInteger(out, offset);
  out.push_back('}');
}

}  // namespace

void RenderCollection(const CollectionRecord& c, std::string& out) {
  out.append("{\"id\":");
  AppendJsonString(out, c.id);
  out.append(",\"name\":");
  AppendJsonString(out, c.name);
  out.append(",\"description\":");
  AppendOptionalString(out, c.description);
  out.append(",\"cover_track_id\":");
  AppendOptionalString(out, c.cover_track_id);
  out.append(",\"cover_image_url\":");
  AppendOptionalString(out, c.cover_image_url);
  out.append(",\"track_count\":");
  if (c.track_count) {
    AppendJsonInteger(out, *c.track_count);
  } else {
    out.append("null");
  }
  out.append(",\"created_at\":");
  AppendTime(out, c.created_at);
  out.append(",\"updated_at\":");
  AppendTime(out, c.updated_at);
  out.push_back('}');
}

void RenderCollectionPage(const std::vector<CollectionRecord>& items, int limit, int64_t offset, std::string& out) {
  out.append("{\"items\":[");
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    RenderCollection(items[i], out);
  }
  out.push_back(']');
  AppendWindow(out, limit, offset);
}

void RenderCollectionEntries(std::string_view collection_id, const std::vector<CollectionEntry>& items, int limit,
                             int64_t offset, std::string& out) {
  out.append("{\"collection_id\":");
  AppendJsonString(out, collection_id);
  out.append(",\"items\":[");
  for (size_t i = 0; i < items.size(); ++i) {
    if (i) out.push_back(',');
    out.append("{\"track_id\":");
    AppendJsonString(out, items[i].track_id);
    out.append(",\"position\":");
    AppendJsonInteger(out, items[i].position);
    out.append(",\"added_at\":");
    AppendTime(out, items[i].added_at);
    out.push_back('}');
  }
  out.push_back(']');
  AppendWindow(out, limit, offset);
}

void RenderShareCreated(const ShareLink& link, std::string_view token, std::string_view url, std::string& out) {
  out.append("{\"id\":");
  AppendJsonString(out, link.id);
  out.append(",\"token\":");
  AppendJsonString(out, token);
  out.append(",\"url\":");
  AppendJsonString(out, url);
  out.append(",\"target_type\":\"track\",\"visibility\":");
  AppendJsonString(out, link.visibility);
  out.append(",\"expires_at\":");
  AppendOptionalTime(out, link.expires_at);
  out.append(",\"created_at\":");
  AppendTime(out, link.created_at);
  out.push_back('}');
}

void RenderSharedLink(std::string_view target_type, std::string_view visibility, std::optional<int64_t> expires_at,
                      const SharedTrackView* view, std::string_view unavailable_message, std::string& out) {
  out.append("{\"kind\":");
  AppendJsonString(out, target_type);
  if (!view) {
    out.append(",\"available\":false,\"message\":");
    AppendJsonString(out, unavailable_message);
    out.append(",\"share\":null,\"track\":null,\"collection\":null,\"tracks\":null}");
    return;
  }
  const TrackPage& t = *view->track;
  out.append(",\"available\":true,\"message\":null,\"share\":{\"target_type\":");
  AppendJsonString(out, target_type);
  out.append(",\"visibility\":");
  AppendJsonString(out, visibility);
  out.append(",\"expires_at\":");
  AppendOptionalTime(out, expires_at);
  out.append("},\"track\":{");
  AppendTrackFields(t, 0, out);
  out.append(",\"playback_url\":").append(view->playback_url_json);
  out.append(",\"licence\":{\"licence_class\":");
  AppendJsonString(out, t.licence_class[0]);
  out.append(",\"licence_version\":");
  AppendJsonString(out, view->licence_version);
  out.append(",\"commercial_use\":").append(view->commercial_use ? "true" : "false");
  out.append(",\"requires_attribution\":").append(view->requires_attribution ? "true" : "false");
  out.append("}},\"collection\":null,\"tracks\":null}");
}

void RenderSharedSave(std::string_view entry_id, std::string_view track_id, std::string_view source,
                      const std::optional<std::string>& share_link_id, int64_t created_at, std::string& out) {
  out.append("{\"id\":");
  AppendJsonString(out, entry_id);
  out.append(",\"track_id\":");
  AppendJsonString(out, track_id);
  out.append(",\"source\":");
  AppendJsonString(out, source);
  out.append(",\"share_link_id\":");
  AppendOptionalString(out, share_link_id);
  out.append(",\"created_at\":");
  AppendTime(out, created_at);
  out.push_back('}');
}

void RenderErrorEnvelope(const ApiError& error, std::string_view trace_id, std::string_view timestamp,
                         std::string& out) {
  const ErrorInfo& info = Describe(error.code);
  out.append("{\"success\":false,\"error\":{\"code\":");
  AppendJsonString(out, info.code);
  out.append(",\"message\":");
  AppendJsonString(out, info.message);
  out.append(",\"system_message\":");
  AppendJsonString(out, error.SystemMessage());
  out.append(",\"type\":");
  AppendJsonString(out, info.type);
  out.append(",\"status\":");
  AppendJsonInteger(out, info.status);
  out.append(",\"details\":{");
  if (!error.field.empty()) {
    out.append("\"field\":");
    AppendJsonString(out, error.field);
  }
  out.append("},\"trace_id\":");
  AppendJsonString(out, trace_id);
  out.append(",\"timestamp\":");
  AppendJsonString(out, timestamp);
  out.append("}}");
}

}  // namespace music_api
