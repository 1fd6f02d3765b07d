// Status, code, type and wording of every error the API can return.
#include "core/error.hpp"

#include <array>

namespace music_api {
namespace {

// Indexed by ErrorCode; the static_assert below keeps the two in step.
constexpr std::array<ErrorInfo, 16> kErrors = {{
    {401, "AUTHENTICATION_REQUIRED", "authentication_error", "Authentication required. Please provide a valid API key.",
     "Missing or invalid authorization header"},
    {401, "INVALID_API_KEY", "authentication_error", "The API key provided is invalid or has been revoked.",
     "Invalid API key"},
    {401, "API_KEY_EXPIRED", "authentication_error", "The API key provided has expired. Please create a new key.",
     "API key expired"},
    {403, "ORGANIZATION_ACCESS_DENIED", "authorization_error", "You do not have access to this organization.",
     "Caller is not a member of the requested organization"},
    {403, "INSUFFICIENT_PERMISSIONS", "authorization_error", "You do not have permission to access this resource.",
     "USE_MUSIC_GENERATION capability required"},
    {404, "RESOURCE_NOT_FOUND", "not_found_error", "The requested resource was not found.", "Resource not found"},
    {405, "METHOD_NOT_ALLOWED", "invalid_request_error", "This method is not allowed for this resource.",
     "Allowed methods: GET, HEAD"},
    {415, "UNSUPPORTED_MEDIA_TYPE", "invalid_request_error", "The request body must be JSON.",
     "Content-Type must be application/json"},
    {422, "VALIDATION_ERROR", "validation_error", "One or more request parameters are invalid.",
     "Invalid request parameters"},
    {422, "IDEMPOTENCY_KEY_REUSED", "invalid_request_error",
     "This Idempotency-Key was already used for a different request.",
     "Idempotency-Key reused with another method, path or body"},
    // A per-user quota (max_collections_per_user, max_share_links_per_user) is reached: 422, not
    // 429, because waiting does not help (clients retry a 429 by themselves); deleting does.
    // No Retry-After. details.field names the limit.
    {422, "QUOTA_EXCEEDED", "invalid_request_error",
     "You have reached the limit for this kind of resource. Delete one before creating another.",
     "Per-user quota reached"},
    // The first request with this key is still running: retrying after Retry-After gets its answer.
    {409, "IDEMPOTENCY_KEY_IN_USE", "conflict_error",
     "A request with this Idempotency-Key is still in progress. Please retry shortly.",
     "Idempotency-Key in use by a request in progress"},
    // A unique constraint refused the write (a concurrent change): nothing was written.
    {409, "CONFLICT", "conflict_error", "The request conflicts with a concurrent change. Please retry.",
     "Conflicting concurrent write; nothing was changed"},
    // A create sent without an Idempotency-Key whose connection broke after the statement was sent,
    // and whose retry could not tell: it may have been made. No Retry-After: sending it again may
    // make a second one. Read it back, or send creates with an Idempotency-Key.
    {503, "WRITE_OUTCOME_UNKNOWN", "server_error",
     "The service could not confirm whether this was saved. Check before sending it again.",
     "Database connection lost after the write was sent; it may have been applied"},
    {500, "INTERNAL_ERROR", "server_error", "An unexpected error occurred. Please try again later.",
     "Internal server error"},
    {503, "SERVICE_UNAVAILABLE", "server_error", "The service is temporarily unavailable. Please try again shortly.",
     "Database unavailable"},
}};
static_assert(kErrors.size() == static_cast<size_t>(ErrorCode::kServiceUnavailable) + 1);

}  // namespace

const ErrorInfo& Describe(ErrorCode code) { return kErrors[static_cast<size_t>(code)]; }

}  // namespace music_api
