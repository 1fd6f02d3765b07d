// The master process: owns the socket, forks workers, replaces the dead, turns signals into actions.
#pragma once

#include <string>

#include "core/config.hpp"
#include "server/listen_socket.hpp"
#include "server/worker_secrets.hpp"

namespace music_api {

struct MasterOptions {
  std::string config_path;
  std::vector<std::pair<std::string, std::string>> overrides;  // from command-line flags, kept across reloads
};

// What the configuration points at, checked before it is used: the connection strings (libpq parses
// them, no connection) and the media key file. The first problem, or "".
std::string CheckConfigReferences(const Config& config);

// Runs until SIGTERM/SIGINT; returns the process exit status.
int RunMaster(Config config, WorkerSecrets secrets, ListenSocket socket, MasterOptions options);

}  // namespace music_api
