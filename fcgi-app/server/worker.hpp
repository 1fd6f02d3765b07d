// A worker process: its own database session, an accept loop, one request at a time.
#pragma once

#include <sys/types.h>

#include <string>

#include "core/config.hpp"
#include "db/database.hpp"
#include "server/stats.hpp"
#include "server/worker_secrets.hpp"

namespace music_api {

// The database layer's settings from the configuration (workers and the auth listener).
DatabaseSettings DatabaseSettingsFor(const Config& config);

// Never returns: exits 0 after SIGTERM (finishing the request in flight), after max_requests, or
// when `master` (the forking process) is already gone; exits 1 when the socket fails for good.
[[noreturn]] void RunWorker(const Config& config, const WorkerSecrets& secrets, int listen_fd, SharedStats& stats,
                            pid_t master);

}  // namespace music_api
