// What the database holds for one API key id, as a plain value the auth stage decides on.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace music_api {

// The key's row joined with the caller's membership in the requested org.
struct KeyRecord {
  std::string secret_hash;
  std::string user_id;
  bool revoked = false;
  std::optional<int64_t> expires_at;  // unix seconds; judged at each request, so a cached record expires on time
  bool member = false;
  bool can_generate = false;
};

}  // namespace music_api
