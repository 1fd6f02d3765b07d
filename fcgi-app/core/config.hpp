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

// nginx's fastcgi_read_timeout (music-api-location.conf): a request's whole budget
// (RequestAlarmSeconds) must end before it, so nginx never gives up first.
inline constexpr int kNginxReadTimeoutSeconds = 30;
// The largest `request_timeout` (with the default database_connect_timeout, the alarm stays
// under kNginxReadTimeoutSeconds; LoadConfig checks the pair).
inline constexpr int kMaxRequestTimeoutSeconds = 11;

struct Config {
  std::string listen;        // unix socket path, or HOST:PORT / :PORT for TCP
  unsigned listen_mode = 0;  // permissions of a unix socket
  std::string listen_owner;  // owner of a unix socket (empty: unchanged)
  std::string listen_group;  // group of a unix socket (empty: unchanged)
  int listen_backlog = 0;
  std::string listen_allow;  // TCP: the only peers accepted, comma-separated IPv4 ("" = any)
  int workers = 0;           // 0 means 2 x online CPUs
  int max_requests = 0;      // 0 means never recycle
  int request_timeout_seconds = 0;
  int retry_after_seconds = 0;
  std::string database;                      // libpq connection string for reads (may name several hosts)
  std::string database_write;                // for writes, LISTEN and the heartbeat: the primary ("" = `database`)
  int database_connect_timeout_seconds = 0;  // per host, libpq's connect_timeout
  int database_keepalives_idle_seconds = 0;
  int database_keepalives_interval_seconds = 0;
  int database_keepalives_count = 0;
  int database_tcp_user_timeout_ms = 0;
  int max_replica_lag_seconds = 0;  // a replica further behind than this is not read from
  std::string key_pepper_file;
  std::string media_root;
  std::string media_keys_file;
  int media_url_ttl_seconds = 0;
  std::string media_base_url;  // scheme and host of every public URL handed out; never empty
  // Per-user quotas, enforced by the create statements (db/library.cpp) in the insert's transaction.
  int max_collections_per_user = 0;
  int max_share_links_per_user = 0;  // live links only: not revoked, not expired

  const std::string& WriteDatabase() const { return database_write.empty() ? database : database_write; }

  int EffectiveWorkers() const;
  // When a worker's own alarm ends a request that is still running. No first attempt of a
  // statement starts after request_timeout T; one that started just before may take a connect and
  // a statement (the server cancels it at T; a host that has not answered by T + 1 s is taken as
  // frozen and its connection shut), then the one retry on a fresh connection: two connects and two
  // statements, T + 2 x (connect + 1) + T. The alarm rings one second after that.
  int RequestAlarmSeconds() const {
    return 2 * (request_timeout_seconds + 1) + 2 * database_connect_timeout_seconds + 1;
  }
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
