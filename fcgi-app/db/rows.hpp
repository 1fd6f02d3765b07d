// Typed rows the database layer hands to the pipeline.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <soci/soci-backend.h>

namespace music_api {

// What the database holds for one key id, joined with the caller's membership in the requested org.
struct KeyRecord {
  std::string secret_hash;
  std::string user_id;
  bool revoked = false;
  std::optional<int64_t> expires_at;  // unix seconds; judged at each request, so a cached record expires on time
  bool member = false;
  bool can_generate = false;
};

// One page of tracks, column by column: the vectors are bound once to the prepared statement and
// reused for every request, so fetching a page allocates nothing once they have grown.
struct TrackPage {
  // The listing statement re-checks the caller (key valid, member with the capability) and the
  // collection in the same round trip; every row repeats the verdict, and a page that is empty or
  // refused is one row with a NULL id.
  std::vector<int> auth_ok;
  std::vector<int> collection_ok;
  std::vector<soci::indicator> id_indicator;
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
    auth_ok.resize(n), collection_ok.resize(n), id_indicator.resize(n);
    id.resize(n), title.resize(n), title_indicator.resize(n), engine.resize(n), mode.resize(n);
    duration.resize(n), duration_indicator.resize(n), instrumental.resize(n), licence_class.resize(n);
    created_at.resize(n);
  }
};

}  // namespace music_api
