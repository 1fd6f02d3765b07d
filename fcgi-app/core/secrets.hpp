// Random identifiers and API-key hashing: everything that touches OpenSSL.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace music_api {

// `length` characters drawn uniformly from `alphabet` with OpenSSL's CSPRNG.
std::string RandomToken(size_t length, std::string_view alphabet);
inline constexpr std::string_view kBase62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
inline constexpr std::string_view kLowerAlnum = "0123456789abcdefghijklmnopqrstuvwxyz";

// req_ + 24 base62 characters (~143 bits): the X-Request-ID and the envelope's trace_id.
std::string NewTraceId();
// PREFIX + 20 lowercase alphanumerics: ids of organizations, users, tracks and collections.
std::string NewResourceId(std::string_view prefix);

// An API key is `mk_<id>_<secret>`: the id (with its mk_ prefix) is stored in clear and used for
// lookup, logs and rate limiting; only a keyed hash of the secret is stored.
struct ApiKeyParts {
  std::string id;      // "mk_" + 16 lowercase alphanumerics
  std::string secret;  // 32 base62 characters
};
std::optional<ApiKeyParts> ParseApiKey(std::string_view key);
ApiKeyParts NewApiKey();
std::string FormatApiKey(const ApiKeyParts& key);
bool IsApiKeyId(std::string_view text);

// HMAC-SHA-256(pepper, id ":" secret) as lowercase hex. Binding the id into the MAC means a hash
// copied onto another key row does not verify.
std::string HashApiKeySecret(std::string_view pepper, const ApiKeyParts& key);
// HMAC-SHA-256 as base64url without padding (the signed media URLs' `sig`, which njs checks).
std::string HmacSha256Base64Url(std::string_view key, std::string_view message);
// SHA-256 of `data` as lowercase hex.
std::string Sha256Hex(std::string_view data);
// SHA-256 of a file's bytes as lowercase hex; nullopt when it cannot be read.
std::optional<std::string> Sha256FileHex(const std::string& path);

// A share link's token (shr_ + 43 base62, ~256 bits) and what is stored of it: HMAC-SHA-256 under
// the pepper as hex, so a copy of the database holds nothing that opens a link.
std::string NewShareToken();
std::string HashShareToken(std::string_view pepper, std::string_view token);

bool ConstantTimeEquals(std::string_view a, std::string_view b);

// A stored Idempotency-Key answer, sealed (AES-256-GCM, a fresh nonce, hex) under a key derived
// from the pepper: a share link's answer carries its token once, and a copy of the database must
// hold nothing that opens a link. `context` (the API key id and the client's key) is
// authenticated too, so a sealed answer moved to another row does not open. Open: nullopt when
// it does not authenticate (another pepper, or tampered).
std::string SealAnswer(std::string_view pepper, std::string_view context, std::string_view plaintext);
std::optional<std::string> OpenAnswer(std::string_view pepper, std::string_view context, std::string_view sealed);

// Reads the server-side pepper; nullopt with `error` set when missing or too short.
std::optional<std::string> ReadPepperFile(const std::string& path, std::string& error);

}  // namespace music_api
