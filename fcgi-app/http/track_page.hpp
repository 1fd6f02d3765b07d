// One page of tracks as the renderer reads it: plain columns, no database types.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace music_api {

// Column by column: the database layer binds these vectors once to its prepared statement and
// reuses them for every request, so fetching a page allocates nothing once they have grown.
struct TrackPage {
  std::vector<std::string> id;
  std::vector<std::string> title;
  std::vector<uint8_t> title_null;
  std::vector<std::string> engine;
  std::vector<std::string> mode;
  std::vector<double> duration;
  std::vector<uint8_t> duration_null;
  std::vector<int> instrumental;
  std::vector<std::string> licence_class;
  std::vector<long long> created_at;  // epoch seconds, truncated

  size_t size() const { return id.size(); }
  void Resize(size_t n) {
    id.resize(n), title.resize(n), title_null.resize(n), engine.resize(n), mode.resize(n);
    duration.resize(n), duration_null.resize(n), instrumental.resize(n), licence_class.resize(n);
    created_at.resize(n);
  }
};

}  // namespace music_api
