// Random identifiers and API-key hashing: everything that touches OpenSSL.
#include "core/secrets.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <fstream>
#include <sstream>
#include <stdexcept>

namespace music_api {
namespace {

constexpr size_t kKeyIdLength = 16;
constexpr size_t kKeySecretLength = 32;
constexpr size_t kMinPepperBytes = 16;

bool AllOf(std::string_view text, std::string_view alphabet) {
  return text.find_first_not_of(alphabet) == std::string_view::npos;
}

}  // namespace

std::string RandomToken(size_t length, std::string_view alphabet) {
  // Rejection sampling keeps every character equally likely.
  const unsigned limit = 256 - (256 % alphabet.size());
  std::string out;
  out.reserve(length);
  unsigned char buf[64];
  while (out.size() < length) {
    if (RAND_bytes(buf, sizeof buf) != 1) throw std::runtime_error("RAND_bytes failed");
    for (unsigned char b : buf) {
      if (b >= limit) continue;
      out.push_back(alphabet[b % alphabet.size()]);
      if (out.size() == length) break;
    }
  }
  return out;
}

std::string NewTraceId() { return "req_" + RandomToken(24, kBase62); }

std::string NewResourceId(std::string_view prefix) { return std::string(prefix) + RandomToken(20, kLowerAlnum); }

bool IsApiKeyId(std::string_view text) {
  return text.size() == 3 + kKeyIdLength && text.starts_with("mk_") && AllOf(text.substr(3), kLowerAlnum);
}

std::optional<ApiKeyParts> ParseApiKey(std::string_view key) {
  constexpr size_t kIdEnd = 3 + kKeyIdLength;
  if (key.size() != kIdEnd + 1 + kKeySecretLength || key[kIdEnd] != '_') return std::nullopt;
  std::string_view id = key.substr(0, kIdEnd);
  std::string_view secret = key.substr(kIdEnd + 1);
  if (!IsApiKeyId(id) || !AllOf(secret, kBase62)) return std::nullopt;
  return ApiKeyParts{std::string(id), std::string(secret)};
}

ApiKeyParts NewApiKey() {
  return {"mk_" + RandomToken(kKeyIdLength, kLowerAlnum), RandomToken(kKeySecretLength, kBase62)};
}

std::string FormatApiKey(const ApiKeyParts& key) { return key.id + "_" + key.secret; }

namespace {

std::string Hex(const unsigned char* bytes, size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    hex.push_back(kHex[bytes[i] >> 4]);
    hex.push_back(kHex[bytes[i] & 15]);
  }
  return hex;
}

unsigned Hmac(std::string_view key, std::string_view message, unsigned char (&mac)[EVP_MAX_MD_SIZE]) {
  unsigned int mac_len = 0;
  if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
            reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &mac_len)) {
    throw std::runtime_error("HMAC failed");
  }
  return mac_len;
}

}  // namespace

std::string HashApiKeySecret(std::string_view pepper, const ApiKeyParts& key) {
  std::string message = key.id + ":" + key.secret;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = Hmac(pepper, message, mac);
  OPENSSL_cleanse(message.data(), message.size());
  return Hex(mac, mac_len);
}

std::string NewShareToken() { return "shr_" + RandomToken(43, kBase62); }

std::string HashShareToken(std::string_view pepper, std::string_view token) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  std::string message = "share:" + std::string(token);
  unsigned mac_len = Hmac(pepper, message, mac);
  return Hex(mac, mac_len);
}

std::string HmacSha256Base64Url(std::string_view key, std::string_view message) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned mac_len = Hmac(key, message, mac);
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  std::string out;
  out.reserve((mac_len * 4 + 2) / 3);
  for (unsigned i = 0; i < mac_len; i += 3) {
    unsigned n = static_cast<unsigned>(mac[i]) << 16;
    if (i + 1 < mac_len) n |= static_cast<unsigned>(mac[i + 1]) << 8;
    if (i + 2 < mac_len) n |= mac[i + 2];
    out.push_back(kAlphabet[(n >> 18) & 63]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    if (i + 1 < mac_len) out.push_back(kAlphabet[(n >> 6) & 63]);
    if (i + 2 < mac_len) out.push_back(kAlphabet[n & 63]);
  }
  return out;
}

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned digest_len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &digest_len, EVP_sha256(), nullptr) != 1) {
    throw std::runtime_error("SHA-256 failed");
  }
  return Hex(digest, digest_len);
}

std::optional<std::string> Sha256FileHex(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), nullptr) != 1) {
    EVP_MD_CTX_free(ctx);
    throw std::runtime_error("SHA-256 unavailable");
  }
  char buffer[1 << 16];
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    EVP_DigestUpdate(ctx, buffer, static_cast<size_t>(in.gcount()));
  }
  const bool read_all = in.eof();
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned digest_len = 0;
  EVP_DigestFinal_ex(ctx, digest, &digest_len);
  EVP_MD_CTX_free(ctx);
  if (!read_all) return std::nullopt;
  return Hex(digest, digest_len);
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<std::string> ReadPepperFile(const std::string& path, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read key pepper file " + path;
    return std::nullopt;
  }
  std::ostringstream content;
  content << in.rdbuf();
  std::string pepper = content.str();
  while (!pepper.empty() && (pepper.back() == '\n' || pepper.back() == '\r')) pepper.pop_back();
  if (pepper.size() < kMinPepperBytes) {
    error = "key pepper file " + path + " must hold at least " + std::to_string(kMinPepperBytes) + " bytes";
    return std::nullopt;
  }
  return pepper;
}

namespace {

constexpr size_t kSealNonceBytes = 12, kSealTagBytes = 16;

std::string SealKey(std::string_view pepper) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned len = Hmac(pepper, "music-api idempotency answer v1", mac);
  return std::string(reinterpret_cast<const char*>(mac), len);  // 32 bytes: the AES-256 key
}

std::optional<std::string> FromHex(std::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out(hex.size() / 2, '\0');
  for (size_t i = 0; i < out.size(); ++i) {
    int hi = OPENSSL_hexchar2int(static_cast<unsigned char>(hex[2 * i]));
    int lo = OPENSSL_hexchar2int(static_cast<unsigned char>(hex[2 * i + 1]));
    if (hi < 0 || lo < 0) return std::nullopt;
    out[i] = static_cast<char>(hi * 16 + lo);
  }
  return out;
}

// One AES-256-GCM pass: seals (`encrypt`) or opens; false when opening fails to authenticate.
bool Gcm(bool encrypt, const std::string& key, const unsigned char* nonce, std::string_view aad, std::string_view in,
         std::string& out, unsigned char* tag) {
  EVP_CIPHER_CTX* ctx = EVP_CIPHER_CTX_new();
  if (!ctx) throw std::runtime_error("EVP_CIPHER_CTX_new failed");
  const auto* k = reinterpret_cast<const unsigned char*>(key.data());
  int len = 0, ok = encrypt ? EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, k, nonce)
                            : EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), nullptr, k, nonce);
  const auto* a = reinterpret_cast<const unsigned char*>(aad.data());
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  out.assign(in.size(), '\0');
  auto* o = reinterpret_cast<unsigned char*>(out.data());
  if (encrypt) {
    ok = ok && EVP_EncryptUpdate(ctx, nullptr, &len, a, static_cast<int>(aad.size())) &&
         EVP_EncryptUpdate(ctx, o, &len, p, static_cast<int>(in.size())) && EVP_EncryptFinal_ex(ctx, o + len, &len) &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, kSealTagBytes, tag);
  } else {
    ok = ok && EVP_DecryptUpdate(ctx, nullptr, &len, a, static_cast<int>(aad.size())) &&
         EVP_DecryptUpdate(ctx, o, &len, p, static_cast<int>(in.size())) &&
         EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, kSealTagBytes, tag) &&
         EVP_DecryptFinal_ex(ctx, o + len, &len) > 0;
  }
  EVP_CIPHER_CTX_free(ctx);
  if (!ok && encrypt) throw std::runtime_error("AES-GCM failed");
  return ok;
}

}  // namespace

std::string SealAnswer(std::string_view pepper, std::string_view context, std::string_view plaintext) {
  unsigned char nonce[kSealNonceBytes], tag[kSealTagBytes];
  if (RAND_bytes(nonce, sizeof nonce) != 1) throw std::runtime_error("RAND_bytes failed");
  std::string cipher;
  Gcm(true, SealKey(pepper), nonce, context, plaintext, cipher, tag);
  return Hex(nonce, sizeof nonce) + Hex(reinterpret_cast<const unsigned char*>(cipher.data()), cipher.size()) +
         Hex(tag, sizeof tag);
}

std::optional<std::string> OpenAnswer(std::string_view pepper, std::string_view context, std::string_view sealed) {
  auto raw = FromHex(sealed);
  if (!raw || raw->size() < kSealNonceBytes + kSealTagBytes) return std::nullopt;
  auto* bytes = reinterpret_cast<unsigned char*>(raw->data());
  std::string_view cipher(raw->data() + kSealNonceBytes, raw->size() - kSealNonceBytes - kSealTagBytes);
  std::string plain;
  if (!Gcm(false, SealKey(pepper), bytes, context, cipher, plain, bytes + raw->size() - kSealTagBytes)) {
    return std::nullopt;
  }
  return plain;
}

}  // namespace music_api
