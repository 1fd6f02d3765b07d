// Signed playback URLs: the signing-key file shared with nginx, and the signature nginx checks.
#include "core/media_keys.hpp"

#include <boost/json.hpp>
#include <fstream>
#include <sstream>

#include "core/secrets.hpp"

namespace music_api {
namespace {

bool AllOf(std::string_view text, std::string_view alphabet) {
  return text.find_first_not_of(alphabet) == std::string_view::npos;
}

constexpr std::string_view kBase64Url = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

}  // namespace

const std::string* MediaKeyFile::Secret(std::string_view id) const {
  for (const auto& [key_id, secret] : keys) {
    if (key_id == id) return &secret;
  }
  return nullptr;
}

bool IsMediaKeyId(std::string_view id) { return !id.empty() && id.size() <= 32 && AllOf(id, kBase64Url); }

bool IsMediaKeySecret(std::string_view secret) {
  return secret.size() >= 32 && secret.size() <= 256 && AllOf(secret, kBase64Url);
}

std::expected<MediaKeyFile, std::string> ParseMediaKeyFile(std::string_view text) {
  boost::system::error_code ec;
  boost::json::value root = boost::json::parse(text, ec);
  if (ec || !root.is_object()) return std::unexpected("not a JSON object");
  const auto& object = root.as_object();
  const auto* current = object.if_contains("current");
  const auto* keys = object.if_contains("keys");
  if (!current || !current->is_string()) return std::unexpected("\"current\" must be a key id");
  if (!keys || !keys->is_object() || keys->as_object().empty()) return std::unexpected("\"keys\" must be an object");
  MediaKeyFile file{std::string(current->as_string()), {}};
  for (const auto& [id, secret] : keys->as_object()) {
    if (!IsMediaKeyId(id)) return std::unexpected("key id '" + std::string(id) + "' is not 1-32 of [A-Za-z0-9_-]");
    if (!secret.is_string() || !IsMediaKeySecret(secret.as_string())) {
      return std::unexpected("the secret of key '" + std::string(id) + "' is not 32-256 base64url characters");
    }
    file.keys.emplace_back(std::string(id), std::string(secret.as_string()));
  }
  if (!file.Secret(file.current)) return std::unexpected("the current key '" + file.current + "' is not in \"keys\"");
  return file;
}

std::expected<MediaKeyFile, std::string> ReadMediaKeyFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::unexpected("cannot read media key file " + path);
  std::ostringstream content;
  content << in.rdbuf();
  auto file = ParseMediaKeyFile(content.str());
  if (!file) return std::unexpected("media key file " + path + ": " + file.error());
  return file;
}

std::string FormatMediaKeyFile(const MediaKeyFile& file) {
  boost::json::object keys;
  for (const auto& [id, secret] : file.keys) keys[id] = secret;
  boost::json::object root;
  root["current"] = file.current;
  root["keys"] = std::move(keys);
  return boost::json::serialize(root) + "\n";
}

void AppendSignedMediaUrl(std::string& out, const MediaSigner& signer, std::string_view base, std::string_view track_id,
                          std::string_view file_name, int64_t expires) {
  const size_t path_start = out.size() + base.size();
  out.append(base).append(kMediaPathPrefix).append(track_id).push_back('/');
  out.append(file_name);
  const std::string exp = std::to_string(expires);
  std::string message = out.substr(path_start);
  message.append("\n").append(exp).append("\n").append(signer.key_id);
  out.append("?exp=").append(exp).append("&kid=").append(signer.key_id).append("&sig=");
  out.append(HmacSha256Base64Url(signer.secret, message));
}

}  // namespace music_api
