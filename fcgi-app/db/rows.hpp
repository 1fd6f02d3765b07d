// Typed rows the database layer hands to the pipeline.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <soci/soci-backend.h>

namespace music_api {

// What the database holds for one key id, joined with the caller's membership in the requested org.
struct KeyRecord {
  std::string secret_hash;
  std::string user_id;
  bool revoked = false;
  bool expired = false;
  bool member = false;
  bool can_generate = false;
};

// One page of tracks, column by column: the vectors are bound once to the prepared statement and
// reused for every request, so fetching a page allocates nothing once they have grown.
struct TrackPage {
  std::vector<std::string> id;
  std::vector<std::string> title;
  std::vector<soci::indicator> title_indicator;
  std::vector<std::string> engine;
  std::vector<std::string> mode;
  std::vector<double> duration;
  std::vector<soci::indicator> duration_indicator;
  std::vector<int> instrumental;
  std::vector<std::string> licence_class;
  std::vector<long long> created_at;  // epoch seconds, truncated

  size_t size() const { return id.size(); }
  void Resize(size_t n) {
    id.resize(n), title.resize(n), title_indicator.resize(n), engine.resize(n), mode.resize(n);
    duration.resize(n), duration_indicator.resize(n), instrumental.resize(n), licence_class.resize(n);
    created_at.resize(n);
  }
};

}  // namespace music_api
