// A worker's memory of authorizations, so the hot path needs one database round trip.
#include "auth/auth_cache.hpp"

namespace music_api {

std::string AuthCache::Key(std::string_view key_id, std::string_view org_id) {
  std::string key;
  key.reserve(key_id.size() + 1 + org_id.size());
  key.append(key_id).push_back('/');
  key.append(org_id);
  return key;
}

const KeyRecord* AuthCache::Find(std::string_view key_id, std::string_view org_id) const {
  auto it = entries_.find(Key(key_id, org_id));
  return it == entries_.end() ? nullptr : &it->second;
}

void AuthCache::Remember(std::string_view key_id, std::string_view org_id, const KeyRecord& record) {
  // Bounded: a flood of distinct keys cannot grow a worker without limit.
  if (entries_.size() >= kMaxEntries) entries_.clear();
  entries_.insert_or_assign(Key(key_id, org_id), record);
}

void AuthCache::Forget(std::string_view key_id, std::string_view org_id) { entries_.erase(Key(key_id, org_id)); }

bool AuthCache::KnownUnknown(std::string_view key_id, int64_t now) const {
  auto it = unknown_.find(std::string(key_id));
  return it != unknown_.end() && now - it->second < kUnknownTtlSeconds;
}

void AuthCache::RememberUnknown(std::string_view key_id, int64_t now) {
  if (unknown_.size() >= kMaxUnknown)
    std::erase_if(unknown_, [&](const auto& e) { return now - e.second >= kUnknownTtlSeconds; });
  if (unknown_.size() >= kMaxUnknown) unknown_.clear();
  unknown_.insert_or_assign(std::string(key_id), now);
}

}  // namespace music_api
