// One-line structured logs (logfmt) on stderr, where journald collects them.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace music_api {

using LogField = std::pair<std::string_view, std::string_view>;

// Writes `ts=… level=… event=… k=v…` as one write(2), so lines from several workers never interleave.
// Under journald the line starts with the level's syslog priority (`<3>` for error), which journald
// strips and records, so `journalctl -p err` finds errors.
void Log(std::string_view level, std::string_view event, std::initializer_list<LogField> fields = {});

// "<N>" for LEVEL (error, warn, info, debug) when stderr is journald's stream (systemd's
// JOURNAL_STREAM names stderr's device and inode), else "".
std::string_view JournalPriorityPrefix(std::string_view level);

}  // namespace music_api
