// libpq connection strings as music-api uses them: one string may name several hosts (a cluster),
// and each connection gets the configured timeouts and keepalives.
#pragma once

#include <string>
#include <string_view>

namespace music_api {

struct ConnectionOptions {
  int connect_timeout_seconds = 2;  // per host
  int keepalives_idle_seconds = 5;
  int keepalives_interval_seconds = 2;
  int keepalives_count = 3;
  int tcp_user_timeout_ms = 5000;
};

// The hosts of a (key=value or URI) connection string, and where a connection should start.
class HostList {
 public:
  // Throws std::invalid_argument with libpq's message when `conninfo` does not parse. With
  // `primary_only`, connections go to a server that accepts writes whatever the string says
  // (target_session_attrs=read-write): the listener and the write session need the primary.
  HostList(std::string_view conninfo, const ConnectionOptions& options, bool primary_only = false);
  int size() const { return hosts_; }
  // The string with its hosts (and their ports and hostaddrs) rotated to start at `first`
  // (mod size), and the options applied, as key=value; libpq tries hosts in this order.
  std::string StartingAt(int first) const;
  // The position of `host`:`port` (as PQhost/PQport name the connected one), or -1.
  int IndexOf(std::string_view host, std::string_view port) const;

 private:
  std::string conninfo_;
  ConnectionOptions options_;
  bool primary_only_ = false;
  int hosts_ = 1;
};

}  // namespace music_api
