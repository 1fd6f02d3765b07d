// A worker process: its own database session, an accept loop, one request at a time.
#pragma once

#include <string>

#include "core/config.hpp"
#include "server/stats.hpp"

namespace music_api {

// Never returns: exits 0 after SIGTERM (finishing the request in flight) or after max_requests.
[[noreturn]] void RunWorker(const Config& config, const std::string& pepper, int listen_fd, SharedStats& stats);

}  // namespace music_api
