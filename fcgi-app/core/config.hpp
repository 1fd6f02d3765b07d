// Server configuration: one table of keys, parsed once into an immutable Config.
#pragma once

#include <expected>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace music_api {

// The largest `workers` allowed. During a reload the retiring generation is still running beside
// the new one, so up to twice this many workers (and database connections) exist at once.
inline constexpr int kMaxWorkers = 1024;

// libpq's connect_timeout for every connection a worker opens (appended to `database`).
inline constexpr int kConnectTimeoutSeconds = 3;
// The largest `request_timeout`: a request's whole budget (RequestAlarmSeconds) must end before
// nginx's fastcgi_read_timeout (30 s in music-api-location.conf), so nginx never gives up first.
inline constexpr int kMaxRequestTimeoutSeconds = 12;

struct Config {
  std::string listen;        // unix socket path, or HOST:PORT / :PORT for TCP
  unsigned listen_mode = 0;  // permissions of a unix socket
  std::string listen_owner;  // owner of a unix socket (empty: unchanged)
  std::string listen_group;  // group of a unix socket (empty: unchanged)
  int listen_backlog = 0;
  int workers = 0;       // 0 means 2 x online CPUs
  int max_requests = 0;  // 0 means never recycle
  int request_timeout_seconds = 0;
  int retry_after_seconds = 0;
  std::string database;  // libpq connection string
  std::string key_pepper_file;

  int EffectiveWorkers() const;
  // When a worker's own alarm ends a request that is still running. No database attempt (connect or
  // statement) starts after request_timeout; one that started just before may take a connect
  // (kConnectTimeoutSeconds) and a statement (statement_timeout = request_timeout): so the
  // last byte is due by 2 x request_timeout + connect, and the alarm rings one second later.
  int RequestAlarmSeconds() const { return 2 * request_timeout_seconds + kConnectTimeoutSeconds + 1; }
};

struct ConfigKeyInfo {
  std::string_view name;
  std::string_view default_value;
  std::string_view help;
};
// Every key, in documentation order (the example config and README list the same keys).
std::span<const ConfigKeyInfo> ConfigKeys();

inline constexpr std::string_view kDefaultConfigPath = "/etc/music-api/music-api.conf";

// Defaults, then the file (when `file_required` or when it exists), then `overrides`
// ("key", "value" pairs from flags), then MUSIC_API_DB / MUSIC_API_PEPPER_FILE from the environment.
// Errors name the file and line, or the flag, and the key.
std::expected<Config, std::string> LoadConfig(const std::string& path, bool file_required,
                                              const std::vector<std::pair<std::string, std::string>>& overrides);

}  // namespace music_api
