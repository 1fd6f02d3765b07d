// Authentication and organization access: which key was presented and what it may see.
#include "auth/auth.hpp"

#include "core/text.hpp"

#include <strings.h>

namespace music_api {
std::optional<std::string_view> PresentedApiKey(std::string_view x_api_key, std::string_view authorization) {
  if (auto key = TrimBlanks(x_api_key); !key.empty()) return key;
  std::string_view auth = TrimBlanks(authorization);
  constexpr std::string_view kScheme = "bearer";
  if (auth.size() > kScheme.size() && strncasecmp(auth.data(), kScheme.data(), kScheme.size()) == 0 &&
      (auth[kScheme.size()] == ' ' || auth[kScheme.size()] == '\t')) {
    if (auto key = TrimBlanks(auth.substr(kScheme.size())); !key.empty()) return key;
  }
  return std::nullopt;
}

Result<std::string> Authorize(const std::optional<KeyRecord>& record, std::string_view presented_hash,
                              bool organization_well_formed, int64_t now) {
  // The secret is checked before revocation and expiry, so knowing a key id alone reveals nothing.
  if (!record || !ConstantTimeEquals(record->secret_hash, presented_hash) || record->revoked) {
    return Fail(ErrorCode::kInvalidApiKey);
  }
  if (record->expires_at && *record->expires_at <= now) return Fail(ErrorCode::kApiKeyExpired);
  // A malformed, unknown or foreign org all get the same 403: no existence leak.
  if (!organization_well_formed || !record->member) return Fail(ErrorCode::kOrganizationAccessDenied);
  if (!record->can_generate) return Fail(ErrorCode::kInsufficientPermissions);
  return record->user_id;
}

}  // namespace music_api
