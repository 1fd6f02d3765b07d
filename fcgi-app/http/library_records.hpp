// Collections, their entries and share links as the renderer reads them: plain values, no
// database types (the database layer fills them; see track_page.hpp for tracks).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace music_api {

// track_count: set by the single-collection answers only (null in the list view).
struct CollectionRecord {
  std::string id, name;
  std::optional<std::string> description, cover_track_id, cover_image_url;
  std::optional<int64_t> track_count;
  int64_t created_at = 0, updated_at = 0;  // unix seconds
};

struct CollectionEntry {
  std::string track_id;
  int64_t position = 0;
  int64_t added_at = 0;
};

struct ShareLink {
  std::string id, visibility;
  std::optional<int64_t> expires_at;
  int64_t created_at = 0;
};

}  // namespace music_api
