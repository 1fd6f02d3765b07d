// A worker's memory of authorizations, so the hot path needs one database round trip.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "auth/key_record.hpp"

namespace music_api {

// Two memories. Records that authorized a request (a refusal of a known key is always asked of
// the database again); the listing statement re-checks every cached fact, and LISTEN/NOTIFY
// clears the cache when keys or memberships change, so a revoked key is refused on its next
// request. And, briefly, key ids the database did not know: a flood of random well-formed ids
// then costs one round trip per id and worker per kUnknownTtlSeconds, not one per request.
class AuthCache {
 public:
  static constexpr int64_t kUnknownTtlSeconds = 10;

  const KeyRecord* Find(std::string_view key_id, std::string_view org_id) const;
  void Remember(std::string_view key_id, std::string_view org_id, const KeyRecord& record);
  void Forget(std::string_view key_id, std::string_view org_id);

  // True when `key_id` was unknown to the database less than kUnknownTtlSeconds before `now`.
  bool KnownUnknown(std::string_view key_id, int64_t now) const;
  void RememberUnknown(std::string_view key_id, int64_t now);

  void Clear() { entries_.clear(), unknown_.clear(); }

 private:
  static constexpr size_t kMaxEntries = 10000;
  static constexpr size_t kMaxUnknown = 10000;
  static std::string Key(std::string_view key_id, std::string_view org_id);
  std::unordered_map<std::string, KeyRecord> entries_;
  std::unordered_map<std::string, int64_t> unknown_;  // key id → unix second it was found unknown
};

}  // namespace music_api
