// One-line structured logs (logfmt) on stderr, where journald collects them.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace music_api {

using LogField = std::pair<std::string_view, std::string_view>;

// Writes `ts=… level=… event=… k=v…` as one write(2), so lines from several workers never interleave.
void Log(std::string_view level, std::string_view event, std::initializer_list<LogField> fields = {});

}  // namespace music_api
