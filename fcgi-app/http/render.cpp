// JSON bodies: the page of tracks and the error envelope, in the spec's key order.
#include "http/render.hpp"

#include "core/time.hpp"
#include "http/json_writer.hpp"

namespace music_api {

void RenderTrack(const TrackPage& page, size_t i, const TrackUrls& urls, std::string& out) {
  out.append("{\"id\":");
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
