// Signed playback URLs: the signing-key file shared with nginx, and the signature nginx checks.
#pragma once

#include <cstdint>
#include <expected>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace music_api {

// Where nginx serves the media root (nginx/music-api-media.conf): /v1/media/TRACK_ID/FILE_NAME.
inline constexpr std::string_view kMediaPathPrefix = "/v1/media/";

// The key file (media_keys_file), JSON so that nginx's njs loads the same file with
// js_preload_object: {"current": "KID", "keys": {"KID": "SECRET", "OLDER_KID": "SECRET"}}.
// URLs are signed with the current key; nginx accepts every key listed, so after a rotation the
// previous key keeps the URLs it signed valid until they expire.
struct MediaKeyFile {
  std::string current;
  std::vector<std::pair<std::string, std::string>> keys;  // id → secret, in file order

  const std::string* Secret(std::string_view id) const;
};

// Key ids: 1..32 of [A-Za-z0-9_-]; secrets: 32..256 of the base64url alphabet.
bool IsMediaKeyId(std::string_view id);
bool IsMediaKeySecret(std::string_view secret);

std::expected<MediaKeyFile, std::string> ParseMediaKeyFile(std::string_view text);
std::expected<MediaKeyFile, std::string> ReadMediaKeyFile(const std::string& path);
std::string FormatMediaKeyFile(const MediaKeyFile& file);

// What a worker signs with.
struct MediaSigner {
  std::string key_id;
  std::string secret;
  int ttl_seconds = 0;
  std::string base_url;  // "" = https:// + the request's Host
};

// base + /v1/media/TRACK/FILE?exp=E&kid=K&sig=S, where S is base64url (no padding) of
// HMAC-SHA-256(secret, PATH "\n" E "\n" K): the path, the expiry and the key id are all signed.
void AppendSignedMediaUrl(std::string& out, const MediaSigner& signer, std::string_view base, std::string_view track_id,
                          std::string_view file_name, int64_t expires);

}  // namespace music_api
