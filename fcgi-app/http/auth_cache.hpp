// A worker's memory of successful authorizations, so the hot path needs one database round trip.
#pragma once

#include <string>
#include <string_view>
#include <unordered_map>

#include "db/rows.hpp"

namespace music_api {

// Only records that authorized a request are kept (a refusal is always asked of the database
// again). The listing statement re-checks every cached fact, and LISTEN/NOTIFY clears the cache
// when keys or memberships change, so a revoked key is refused on its next request.
class AuthCache {
 public:
  const KeyRecord* Find(std::string_view key_id, std::string_view org_id) const;
  void Remember(std::string_view key_id, std::string_view org_id, const KeyRecord& record);
  void Forget(std::string_view key_id, std::string_view org_id);
  void Clear() { entries_.clear(); }

 private:
  static constexpr size_t kMaxEntries = 10000;
  static std::string Key(std::string_view key_id, std::string_view org_id);
  std::unordered_map<std::string, KeyRecord> entries_;
};

}  // namespace music_api
