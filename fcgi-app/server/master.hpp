// The master process: owns the socket, forks workers, replaces the dead, turns signals into actions.
#pragma once

#include <string>

#include "core/config.hpp"
#include "server/listen_socket.hpp"

namespace music_api {

struct MasterOptions {
  std::string config_path;
  std::vector<std::pair<std::string, std::string>> overrides;  // from command-line flags, kept across reloads
};

// libpq's verdict on the configured connection strings (a parse, no connection): the error, or "".
std::string CheckConnectionStrings(const Config& config);

// Runs until SIGTERM/SIGINT; returns the process exit status.
int RunMaster(Config config, std::string pepper, ListenSocket socket, MasterOptions options);

}  // namespace music_api
