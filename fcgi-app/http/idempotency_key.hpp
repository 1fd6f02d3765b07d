// The Idempotency-Key header (IETF httpapi draft, as Stripe's API uses it): its rules and what
// "the same request" means for a repeat. Pure: no database, unit-tested.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"
#include "http/request.hpp"

namespace music_api {

inline constexpr size_t kMaxIdempotencyKeyBytes = 255;

// The methods a key applies to (GET and HEAD are safe to repeat without one).
bool TakesIdempotencyKey(std::string_view method);

// The key as sent: 1 to 255 printable ASCII characters (space to '~'), else 422 naming the header.
Result<std::string_view> ParseIdempotencyKey(std::string_view value);

// SHA-256 (hex) of the method, the raw path with its query, and the body: a repeat must match it.
std::string RequestFingerprint(const Request& request);

}  // namespace music_api
