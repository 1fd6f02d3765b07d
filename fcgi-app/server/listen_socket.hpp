// The FastCGI listening socket: inherited from systemd, or opened as the config says.
#pragma once

#include <expected>
#include <string>

#include "core/config.hpp"

namespace music_api {

struct ListenSocket {
  int fd = -1;
  std::string description;  // for logs: "unix:/run/…", "tcp:127.0.0.1:9000", "systemd"
  bool inherited = false;
  std::string bound_path;  // the unix socket file this process created (removed at exit), else empty
};

std::expected<ListenSocket, std::string> OpenListenSocket(const Config& config);

}  // namespace music_api
