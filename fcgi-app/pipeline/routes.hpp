// The route handlers of collections and share links (library_routes.cpp); Dispatch in
// pipeline.cpp picks one per request. Each fills `response` or returns the error to render.
#pragma once

#include <string>
#include <string_view>

#include "http/request.hpp"
#include "http/response.hpp"
#include "http/route.hpp"
#include "pipeline/pipeline.hpp"

namespace music_api {

using RouteHandler = Result<void> (*)(const Request&, const Route&, std::string_view trace_id, PipelineContext&,
                                      Response&);

Result<void> ListCollections(const Request&, const Route&, std::string_view, PipelineContext&, Response&);
Result<void> CreateCollection(const Request&, const Route&, std::string_view, PipelineContext&, Response&);
Result<void> GetCollection(const Request&, const Route&, std::string_view, PipelineContext&, Response&);
Result<void> UpdateCollection(const Request&, const Route&, std::string_view, PipelineContext&, Response&);
Result<void> DeleteCollection(const Request&, const Route&, std::string_view, PipelineContext&, Response&);
Result<void> ListCollectionEntries(const Request&, const Route&, std::string_view, PipelineContext&, Response&);
Result<void> AddToCollection(const Request&, const Route&, std::string_view, PipelineContext&, Response&);
Result<void> RemoveFromCollection(const Request&, const Route&, std::string_view, PipelineContext&, Response&);
Result<void> ReorderCollection(const Request&, const Route&, std::string_view, PipelineContext&, Response&);
Result<void> ShareTrack(const Request&, const Route&, std::string_view, PipelineContext&, Response&);
Result<void> RevokeShare(const Request&, const Route&, std::string_view, PipelineContext&, Response&);
Result<void> ResolveShare(const Request&, const Route&, std::string_view, PipelineContext&, Response&);
Result<void> SaveShared(const Request&, const Route&, std::string_view, PipelineContext&, Response&);

// Where the public URLs this API hands out point: media_base_url, else https:// and the Host.
std::string PublicBase(const Request& request, const PipelineContext& context);
// A signed playback URL for TRACK's FILE, as a JSON string value.
std::string SignedUrlJson(const PipelineContext& context, std::string_view base, std::string_view track_id,
                          std::string_view file_name, int64_t now);

}  // namespace music_api
