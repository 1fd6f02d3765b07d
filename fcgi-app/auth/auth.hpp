// Authentication and organization access: which key was presented and what it may see.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "auth/key_record.hpp"
#include "core/error.hpp"
#include "core/secrets.hpp"

namespace music_api {

// X-API-Key wins over `Authorization: Bearer` (scheme case-insensitive); an empty value is absent.
// Keys in the query string are never looked at.
std::optional<std::string_view> PresentedApiKey(std::string_view x_api_key, std::string_view authorization);

// Decides from the key's row (nullopt: no such key id) who the caller is, and whether they may list
// tracks in the requested org at `now` (unix seconds). `presented_hash` is HashApiKeySecret of the
// key the client sent (computed once per request: the listing statement re-checks it too).
Result<std::string> Authorize(const std::optional<KeyRecord>& record, std::string_view presented_hash,
                              bool organization_well_formed, int64_t now);

}  // namespace music_api
