// Each host's one connection to the primary: it LISTENs for key and membership changes (a standby
// refuses LISTEN, so the workers, whose reads may be on replicas, cannot) and writes the heartbeat
// by which replicas' readers judge their lag.
#pragma once

#include <functional>
#include <string>

#include "db/conninfo.hpp"

namespace music_api {

// Runs until the process is stopped (SIGTERM's default action: it holds nothing to clean up).
// Calls `changed` once after every (re)connect, since notifications sent while it was away are
// lost and every cache must be flushed, and once per batch of notifications. A connection that
// fails, stops answering (3 s) or lands on a server that cannot write (a demoted primary) is
// dropped and the primary found again, once a second.
[[noreturn]] void RunAuthListener(const std::string& conninfo, const ConnectionOptions& options,
                                  const std::function<void()>& changed);

}  // namespace music_api
