// The Idempotency-Key header's rules and the request fingerprint a repeat is compared by.
#include "http/idempotency_key.hpp"

#include "core/secrets.hpp"

namespace music_api {

bool TakesIdempotencyKey(std::string_view method) {
  return method == "POST" || method == "PATCH" || method == "DELETE";
}

Result<std::string_view> ParseIdempotencyKey(std::string_view value) {
  bool printable = !value.empty() && value.size() <= kMaxIdempotencyKeyBytes;
  for (char c : value) printable = printable && c >= 0x20 && c <= 0x7E;
  if (!printable) {
    return Fail(ApiError::Validation("Idempotency-Key", "Idempotency-Key must be 1 to 255 printable ASCII characters"));
  }
  return value;
}

std::string RequestFingerprint(const Request& request) {
  std::string text;
  text.reserve(request.method.size() + request.uri.size() + request.body.size() + 2);
  text.append(request.method).push_back('\n');
  text.append(request.uri).push_back('\n');
  text.append(request.body);
  return Sha256Hex(text);
}

}  // namespace music_api
