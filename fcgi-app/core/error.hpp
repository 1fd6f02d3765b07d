// The one error type every request stage returns, and the one table mapping it to HTTP.
#pragma once

#include <expected>
#include <string>
#include <string_view>

namespace music_api {

enum class ErrorCode {
  kAuthenticationRequired,
  kInvalidApiKey,
  kApiKeyExpired,
  kOrganizationAccessDenied,
  kInsufficientPermissions,
  kResourceNotFound,
  kMethodNotAllowed,
  kUnsupportedMediaType,
  kValidationError,
  kIdempotencyKeyReused,
  kQuotaExceeded,
  kIdempotencyKeyInUse,
  kConflict,
  kWriteOutcomeUnknown,
  kInternalError,
  kServiceUnavailable,
};

// The fixed, client-visible description of a code: written once, here.
struct ErrorInfo {
  int status;
  std::string_view code;
  std::string_view type;
  std::string_view message;         // for people
  std::string_view system_message;  // for programs and logs; may be overridden per error
};

const ErrorInfo& Describe(ErrorCode code);

struct ApiError {
  ErrorCode code;
  std::string system_message;  // empty: the table's default
  std::string field;           // details.field: the parameter (VALIDATION_ERROR) or the limit (QUOTA_EXCEEDED)
  std::string_view allow;      // METHOD_NOT_ALLOWED only: the route's methods (static text), for Allow

  static ApiError Of(ErrorCode code) { return {code, {}, {}, {}}; }
  static ApiError Validation(std::string field, std::string why) {
    return {ErrorCode::kValidationError, std::move(why), std::move(field), {}};
  }
  // `limit`: the configuration key whose value was reached, e.g. max_collections_per_user.
  static ApiError Quota(std::string limit, std::string why) {
    return {ErrorCode::kQuotaExceeded, std::move(why), std::move(limit), {}};
  }
  std::string_view SystemMessage() const {
    return system_message.empty() ? Describe(code).system_message : std::string_view(system_message);
  }
};

template <typename T>
using Result = std::expected<T, ApiError>;

inline std::unexpected<ApiError> Fail(ErrorCode code) { return std::unexpected(ApiError::Of(code)); }
inline std::unexpected<ApiError> Fail(ApiError error) { return std::unexpected(std::move(error)); }

}  // namespace music_api
