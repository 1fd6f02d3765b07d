// The secrets a worker runs with, read by the master (its own header: the master's interface must
// not reach the database layer's headers).
#pragma once

#include <string>

#include "core/media_keys.hpp"

namespace music_api {

// What the master reads at start and on each reload, and every worker it forks inherits. A worker
// that restarts later (max_requests, a crash) so signs with the media key read at the last reload,
// the one nginx was told to reload with, never with a newer file nginx has not loaded yet.
struct WorkerSecrets {
  std::string pepper;
  MediaKeyFile media_keys;
};

}  // namespace music_api
