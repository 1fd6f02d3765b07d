// Server configuration: one table of keys, parsed once into an immutable Config.
#include "core/config.hpp"

#include <arpa/inet.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>

namespace music_api {
namespace {

using Setter = std::function<std::optional<std::string>(Config&, std::string_view)>;

Setter Int(int Config::*member, int min, int max) {
  return [=](Config& c, std::string_view v) -> std::optional<std::string> {
    int n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || end != v.data() + v.size() || n < min || n > max) {
      return "expected an integer from " + std::to_string(min) + " to " + std::to_string(max);
    }
    c.*member = n;
    return std::nullopt;
  };
}

Setter Text(std::string Config::*member, bool may_be_empty) {
  return [=](Config& c, std::string_view v) -> std::optional<std::string> {
    if (!may_be_empty && v.empty()) return "must not be empty";
    c.*member = std::string(v);
    return std::nullopt;
  };
}

Setter Mode() {
  return [](Config& c, std::string_view v) -> std::optional<std::string> {
    unsigned n = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n, 8);
    if (ec != std::errc() || end != v.data() + v.size() || n > 0777) return "expected an octal mode such as 0660";
    c.listen_mode = n;
    return std::nullopt;
  };
}

// Comma-separated IPv4 addresses (libfcgi's FCGI_WEB_SERVER_ADDRS form), or empty.
Setter PeerList() {
  return [](Config& c, std::string_view v) -> std::optional<std::string> {
    std::string_view rest = v;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string address(rest.substr(0, comma));
      in_addr parsed{};
      if (inet_pton(AF_INET, address.c_str(), &parsed) != 1) {
        return "expected IPv4 addresses separated by commas (the nginx hosts), e.g. 10.0.0.5,10.0.0.6";
      }
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
      if (comma != std::string_view::npos && rest.empty()) return "a trailing comma";
    }
    c.listen_allow = std::string(v);
    return std::nullopt;
  };
}

// Scheme and host only (http:// or https://, a host, maybe a port): the signed path is appended to
// it as is, so a path or a trailing slash would break every signature. Never empty: every public
// URL (playback, share links) is built from this value alone, never from the request's Host header,
// which any client can set (a URL minted from it would point a victim at the attacker's host).
// Empty used to mean "follow the Host header": refused, so a file that relied on it is noticed by
// --test (and at start or reload) instead of silently minting other URLs.
Setter BaseUrl() {
  return [](Config& c, std::string_view v) -> std::optional<std::string> {
    if (v.empty()) {
      return "must be set: the scheme and host clients reach this API at, e.g. https://api.example.com "
             "(public URLs are never built from a request's Host header)";
    }
    std::string_view rest = v.starts_with("https://") ? v.substr(8) : v.starts_with("http://") ? v.substr(7) : "";
    if (rest.empty() || rest.find_first_of("/?# \t") != std::string_view::npos) {
      return "expected a scheme and host such as https://api.example.com (no path, no slash at the end)";
    }
    c.media_base_url = std::string(v);
    return std::nullopt;
  };
}

struct ConfigKey {
  ConfigKeyInfo info;
  Setter set;
};

// The largest per-user quota: each create counts the user's rows under a per-user lock, so the
// count's cost (an index range of this many entries) is paid by every create at the limit.
constexpr int kMaxQuota = 100000;

constexpr size_t kKeyCount = 25;

const std::array<ConfigKey, kKeyCount>& Table() {
  static const std::array<ConfigKey, kKeyCount> kTable = {{
      {{"listen", "/run/music-api/fcgi.sock",
        "FastCGI socket: a unix socket path, or HOST:PORT for TCP. Ignored under systemd socket activation."},
       Text(&Config::listen, false)},
      {{"listen_mode", "0660", "Permissions of the unix socket (nginx must be able to connect)."}, Mode()},
      {{"listen_owner", "", "Owner of the unix socket; empty keeps the process's user."},
       Text(&Config::listen_owner, true)},
      {{"listen_group", "", "Group of the unix socket, e.g. www-data; empty keeps the process's group."},
       Text(&Config::listen_group, true)},
      {{"listen_backlog", "1024", "listen(2) backlog of the socket."}, Int(&Config::listen_backlog, 1, 65535)},
      {{"listen_allow", "127.0.0.1",
        "With a TCP listen: the only peers accepted (the nginx hosts' IPv4 addresses, comma-separated); "
        "others are closed at accept. FastCGI has no authentication: a peer that reaches the port skips "
        "nginx's TLS, limits and logs and sets REMOTE_ADDR itself. Empty accepts any peer. A unix socket "
        "ignores it."},
       PeerList()},
      {{"workers", "0", "Worker processes (each holds one PostgreSQL connection); 0 means 2 x CPUs."},
       Int(&Config::workers, 0, kMaxWorkers)},
      {{"max_requests", "0", "A worker exits after this many requests and is replaced; 0 means never."},
       Int(&Config::max_requests, 0, 100000000)},
      {{"request_timeout", "10",
        "Seconds a request may take (at most 11, so the worker answers before nginx's 30 s "
        "fastcgi_read_timeout); also the database statement_timeout."},
       Int(&Config::request_timeout_seconds, 1, kMaxRequestTimeoutSeconds)},
      {{"retry_after", "2", "Seconds sent in Retry-After when the database cannot be reached."},
       Int(&Config::retry_after_seconds, 1, 3600)},
      {{"database", "dbname=music user=music_api",
        "libpq connection string of the API role for reads. On a cluster it names every node "
        "(host=a,b,c) with target_session_attrs=prefer-standby; each worker starts at its own host. "
        "Environment MUSIC_API_DB overrides."},
       Text(&Config::database, false)},
      {{"database_write", "",
        "libpq connection string to the primary, for the key-change listener and the heartbeat "
        "(host=a,b,c target_session_attrs=read-write); empty means `database`. Environment "
        "MUSIC_API_DB_WRITE overrides."},
       Text(&Config::database_write, true)},
      {{"database_connect_timeout", "2", "Seconds to connect to one host before trying the next (libpq, 2 to 5)."},
       Int(&Config::database_connect_timeout_seconds, 2, 5)},
      {{"database_keepalives_idle", "5", "Seconds of silence before TCP keepalive probes start."},
       Int(&Config::database_keepalives_idle_seconds, 1, 3600)},
      {{"database_keepalives_interval", "2", "Seconds between TCP keepalive probes."},
       Int(&Config::database_keepalives_interval_seconds, 1, 600)},
      {{"database_keepalives_count", "3", "Unanswered keepalive probes after which a connection is dead."},
       Int(&Config::database_keepalives_count, 1, 100)},
      {{"database_tcp_user_timeout", "5000",
        "Milliseconds sent data may stay unacknowledged before the connection is dead (0: the kernel's)."},
       Int(&Config::database_tcp_user_timeout_ms, 0, 600000)},
      {{"max_replica_lag", "5",
        "Seconds a replica may lag the primary and still be read from; a revoked key is refused at most "
        "this + 1 s after the revocation commits."},
       Int(&Config::max_replica_lag_seconds, 1, 3600)},
      {{"key_pepper_file", "/etc/music-api/key-pepper",
        "File with the secret pepper for API-key hashes (>= 16 bytes). Environment MUSIC_API_PEPPER_FILE "
        "overrides."},
       Text(&Config::key_pepper_file, false)},
      {{"media_root", "/var/lib/music-api/media",
        "Directory of the audio files, one folder per track (music-admin writes it, nginx serves it; the "
        "workers only sign URLs for it). Environment MUSIC_API_MEDIA_ROOT overrides."},
       Text(&Config::media_root, false)},
      {{"media_keys_file", "/etc/music-api/media-keys.json",
        "The playback-URL signing keys (current and previous), shared with nginx's njs check; written by "
        "`music-admin media-key rotate`. Environment MUSIC_API_MEDIA_KEYS_FILE overrides."},
       Text(&Config::media_keys_file, false)},
      {{"media_url_ttl", "300",
        "Seconds a signed playback URL stays valid (long enough to start playing; seeking re-uses it)."},
       Int(&Config::media_url_ttl_seconds, 10, 86400)},
      {{"media_base_url", "https://localhost",
        "Scheme and host of every public URL the API hands out (signed playback URLs, share links), e.g. "
        "https://api.example.com: no path, no trailing slash. Never taken from the request's Host header. "
        "The default only suits a client on this host: set your public name."},
       BaseUrl()},
      {{"max_collections_per_user", "1000",
        "Collections one user may own (in all organizations together), 1 to 100000; a create beyond it is "
        "refused with 422 QUOTA_EXCEEDED until one is deleted."},
       Int(&Config::max_collections_per_user, 1, kMaxQuota)},
      {{"max_share_links_per_user", "10000",
        "Live share links (not revoked, not expired) one user may have created, 1 to 100000; a create beyond "
        "it is refused with 422 QUOTA_EXCEEDED until one is revoked or expires."},
       Int(&Config::max_share_links_per_user, 1, kMaxQuota)},
  }};
  return kTable;
}

const ConfigKey* FindKey(std::string_view name) {
  for (const auto& key : Table()) {
    if (key.info.name == name) return &key;
  }
  return nullptr;
}

std::string_view Trim(std::string_view s) {
  const char* ws = " \t\r";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string_view::npos) return {};
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

std::optional<std::string> Apply(Config& config, std::string_view name, std::string_view value,
                                 const std::string& where) {
  const ConfigKey* key = FindKey(name);
  if (!key) return where + ": unknown key '" + std::string(name) + "'";
  if (auto error = key->set(config, value)) return where + ": " + std::string(name) + ": " + *error;
  return std::nullopt;
}

}  // namespace

int Config::EffectiveWorkers() const {
  if (workers > 0) return workers;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  return static_cast<int>(cpus > 0 ? 2 * cpus : 2);
}

std::span<const ConfigKeyInfo> ConfigKeys() {
  static const auto kInfos = [] {
    std::array<ConfigKeyInfo, kKeyCount> infos;
    for (size_t i = 0; i < infos.size(); ++i) infos[i] = Table()[i].info;
    return infos;
  }();
  return kInfos;
}

std::expected<Config, std::string> LoadConfig(const std::string& path, bool file_required,
                                              const std::vector<std::pair<std::string, std::string>>& overrides) {
  Config config;
  for (const auto& key : Table()) {
    if (auto error = key.set(config, key.info.default_value)) return std::unexpected("default: " + *error);
  }

  std::ifstream in(path);
  if (!in && file_required) return std::unexpected("cannot read configuration file " + path);
  std::string line;
  for (int number = 1; in && std::getline(in, line); ++number) {
    std::string_view text = Trim(line);
    if (text.empty() || text.front() == '#' || text.front() == ';') continue;
    size_t eq = text.find('=');
    std::string where = path + ":" + std::to_string(number);
    if (eq == std::string_view::npos) return std::unexpected(where + ": expected 'key = value'");
    if (auto error = Apply(config, Trim(text.substr(0, eq)), Trim(text.substr(eq + 1)), where)) {
      return std::unexpected(*error);
    }
  }

  for (const auto& [name, value] : overrides) {
    if (auto error = Apply(config, name, value, "--" + name)) return std::unexpected(*error);
  }
  static constexpr std::pair<const char*, const char*> kEnvironment[] = {
      {"MUSIC_API_DB", "database"},
      {"MUSIC_API_DB_WRITE", "database_write"},
      {"MUSIC_API_PEPPER_FILE", "key_pepper_file"},
      {"MUSIC_API_MEDIA_KEYS_FILE", "media_keys_file"},
      {"MUSIC_API_MEDIA_ROOT", "media_root"}};
  for (const auto& [variable, name] : kEnvironment) {
    const char* value = std::getenv(variable);
    if (value && *value) {
      if (auto error = Apply(config, name, value, variable)) return std::unexpected(*error);
    }
  }
  if (config.RequestAlarmSeconds() >= kNginxReadTimeoutSeconds) {
    return std::unexpected("request_timeout " + std::to_string(config.request_timeout_seconds) +
                           " with database_connect_timeout " + std::to_string(config.database_connect_timeout_seconds) +
                           " gives a request budget of " + std::to_string(config.RequestAlarmSeconds()) +
                           " s, not under nginx's fastcgi_read_timeout of " + std::to_string(kNginxReadTimeoutSeconds) +
                           " s: lower one of them");
  }
  return config;
}

}  // namespace music_api
