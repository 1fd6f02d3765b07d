// music-admin's media commands: importing audio into the media root, and the URL-signing keys.
#include <fcntl.h>
#include <soci/soci.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>

#include "admin/cli.hpp"
#include "core/config.hpp"
#include "core/media_keys.hpp"
#include "core/secrets.hpp"
#include "core/text.hpp"
#include "db/admin_statements.hpp"

namespace music_api::admin {
namespace sa = sql::admin;
namespace fs = std::filesystem;
namespace {

constexpr int kMaxStems = 63;  // with the master, sql::kMaxMediaRows

struct AudioType {
  std::string_view extension;
  std::string_view mime;
  // The file's first bytes, so a mislabelled or truncated file is refused before it is served.
  bool (*looks_right)(std::string_view head);
};

bool IsMp3(std::string_view h) {
  return h.starts_with("ID3") || (h.size() >= 2 && static_cast<unsigned char>(h[0]) == 0xFF &&
                                  (static_cast<unsigned char>(h[1]) & 0xE0) == 0xE0);
}
bool IsWav(std::string_view h) { return h.size() >= 12 && h.starts_with("RIFF") && h.substr(8, 4) == "WAVE"; }
bool IsFlac(std::string_view h) { return h.starts_with("fLaC"); }
bool IsOgg(std::string_view h) { return h.starts_with("OggS"); }
bool IsMp4(std::string_view h) { return h.size() >= 8 && h.substr(4, 4) == "ftyp"; }

// The types nginx/music-api-media.conf maps: the extension decides the Content-Type nginx sends.
constexpr std::array<AudioType, 7> kAudioTypes = {{{"mp3", "audio/mpeg", IsMp3},
                                                   {"wav", "audio/wav", IsWav},
                                                   {"flac", "audio/flac", IsFlac},
                                                   {"ogg", "audio/ogg", IsOgg},
                                                   {"oga", "audio/ogg", IsOgg},
                                                   {"opus", "audio/ogg", IsOgg},
                                                   {"m4a", "audio/mp4", IsMp4}}};

const AudioType& RequireAudioType(const std::string& path) {
  std::string extension = fs::path(path).extension().string();
  if (!extension.empty()) extension.erase(0, 1);
  for (char& c : extension) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const auto& type : kAudioTypes) {
    if (type.extension != extension) continue;
    std::ifstream in(path, std::ios::binary);
    if (!in) throw UsageError("cannot read " + path);
    std::string head(16, '\0');
    in.read(head.data(), static_cast<std::streamsize>(head.size()));
    head.resize(static_cast<size_t>(in.gcount()));
    if (!type.looks_right(head)) throw UsageError(path + " does not look like a ." + extension + " file");
    return type;
  }
  throw UsageError(path + ": the audio type is named by the extension: mp3, wav, flac, ogg, oga, opus or m4a");
}

void RequireStemName(const std::string& name) {
  bool ok = !name.empty() && name.size() <= 32 && name != "master";
  for (size_t i = 0; ok && i < name.size(); ++i) {
    char c = name[i];
    ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (i > 0 && (c == '_' || c == '-'));
  }
  if (!ok)
    throw UsageError("stem name '" + name +
                     "' must be 1-32 of [a-z0-9_-], starting with a letter or digit, not 'master'");
}

[[noreturn]] void Fail(const std::string& what) { throw UsageError(what + ": " + std::strerror(errno)); }

std::string MediaRoot(const Context& context) {
  if (auto root = context.args.Option("media-root")) return *root;
  auto config = LoadConfig(context.config_path, context.config_explicit, {});
  if (!config) throw UsageError(config.error());
  return config->media_root;
}

// Copies `source` into DIR/FILE_NAME so that no reader ever sees a partial file: the bytes go to a
// hidden temporary file in the same directory (never a signable name), are flushed, then renamed
// over the target in one step. Answers the copy's size and SHA-256 (of the bytes written).
struct Stored {
  long long size = 0;
  std::string sha256;
};

Stored StoreAtomically(const std::string& source, const fs::path& dir, const std::string& file_name) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw UsageError("cannot create " + dir.string() + ": " + ec.message());
  ::chmod(dir.c_str(), 0755);
  std::string temp = (dir / (".import-XXXXXX")).string();
  int out = mkstemp(temp.data());
  if (out < 0) Fail("cannot create a temporary file in " + dir.string());
  auto cleanup = [&] {
    ::close(out);
    ::unlink(temp.c_str());
  };
  std::ifstream in(source, std::ios::binary);
  if (!in) {
    cleanup();
    throw UsageError("cannot read " + source);
  }
  char buffer[1 << 16];
  Stored stored;
  while (in.read(buffer, sizeof buffer) || in.gcount() > 0) {
    const char* at = buffer;
    auto left = static_cast<size_t>(in.gcount());
    while (left > 0) {
      ssize_t n = ::write(out, at, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        cleanup();
        Fail("cannot write " + temp);
      }
      at += n, left -= static_cast<size_t>(n), stored.size += n;
    }
  }
  if (!in.eof() || ::fchmod(out, 0644) != 0 || ::fsync(out) != 0) {
    cleanup();
    Fail("cannot copy " + source);
  }
  ::close(out);
  // The hash is of what landed on disk, not of the source (which might change meanwhile).
  auto sha = Sha256FileHex(temp);
  if (!sha) {
    ::unlink(temp.c_str());
    throw UsageError("cannot read back " + temp);
  }
  stored.sha256 = *sha;
  if (::rename(temp.c_str(), (dir / file_name).c_str()) != 0) {
    ::unlink(temp.c_str());
    Fail("cannot move the copy into place");
  }
  if (int d = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY); d >= 0) {
    ::fsync(d);  // the rename itself survives a crash
    ::close(d);
  }
  return stored;
}

}  // namespace

void ImportAudio(Context& context, const std::string& track, const std::string& name, const std::string& source) {
  if (name != "master") RequireStemName(name);
  const AudioType& type = RequireAudioType(source);
  auto& session = context.Session();
  if (name != "master") {
    long long stems = 0;
    session << sa::kCountStems, soci::use(track, "track"), soci::into(stems);
    if (stems >= kMaxStems) throw UsageError("a track holds at most " + std::to_string(kMaxStems) + " stems");
  }
  const std::string file_name = (name == "master" ? "master" : "stem-" + name) + "." + std::string(type.extension);
  const fs::path dir = fs::path(MediaRoot(context)) / track;
  std::string previous;
  soci::indicator previous_ind = soci::i_null;
  session << sa::kPreviousMediaFile, soci::use(track, "track"), soci::use(name, "name"),
      soci::into(previous, previous_ind);
  // The file first, then its row: a row never names a file that is not there.
  Stored stored = StoreAtomically(source, dir, file_name);
  std::string mime(type.mime);
  session << sa::kUpsertMedia, soci::use(track, "track"), soci::use(name, "name"), soci::use(file_name, "file"),
      soci::use(mime, "mime"), soci::use(stored.size, "size"), soci::use(stored.sha256, "sha");
  if (previous_ind == soci::i_ok && previous != file_name) ::unlink((dir / previous).c_str());
}

int TrackAudio(Context& context) {
  context.args.ExpectPositional(2, "track audio TRACK FILE [--stem NAME] [--media-root DIR]");
  const std::string& track = context.args.At(0, "TRACK");
  if (!IsResourceId(track, "mtrack_")) throw UsageError("not a track id: '" + track + "'");
  long long count = 0;
  context.Session() << sa::kTrackExists, soci::use(track, "id"), soci::into(count);
  if (count == 0) throw UsageError("no such track: " + track);
  ImportAudio(context, track, context.args.Option("stem").value_or("master"), context.args.At(1, "FILE"));
  std::cout << track << "\n";
  return 0;
}

int MediaKeyRotate(Context& context) {
  context.args.ExpectPositional(0, "media-key rotate [--file PATH]");
  std::string path;
  if (auto file = context.args.Option("file")) {
    path = *file;
  } else {
    auto config = LoadConfig(context.config_path, context.config_explicit, {});
    if (!config) throw UsageError(config.error());
    path = config->media_keys_file;
  }
  // The new key becomes current; the one it replaces stays, so the URLs it signed keep working
  // until they expire; any older key goes.
  MediaKeyFile next{"k" + RandomToken(12, kLowerAlnum), {}};
  next.keys.emplace_back(next.current,
                         RandomToken(43, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"));
  struct stat old_stat {};
  const bool existed = ::stat(path.c_str(), &old_stat) == 0;
  if (existed) {
    auto current = ReadMediaKeyFile(path);
    if (!current) throw UsageError(current.error() + " (move it away to start afresh)");
    next.keys.emplace_back(current->current, *current->Secret(current->current));
  }
  const std::string text = FormatMediaKeyFile(next);
  std::string temp = path + ".XXXXXX";
  int out = mkstemp(temp.data());
  if (out < 0) Fail("cannot create a file beside " + path);
  bool ok = ::fchmod(out, 0640) == 0 &&
            (!existed || ::geteuid() != 0 || ::fchown(out, old_stat.st_uid, old_stat.st_gid) == 0) &&
            ::write(out, text.data(), text.size()) == static_cast<ssize_t>(text.size()) && ::fsync(out) == 0;
  ::close(out);
  if (!ok || ::rename(temp.c_str(), path.c_str()) != 0) {
    ::unlink(temp.c_str());
    Fail("cannot write " + path);
  }
  std::cout << next.current << "\n";
  return 0;
}

}  // namespace music_api::admin
