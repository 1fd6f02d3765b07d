// UTC timestamps as the API shows them: YYYY-MM-DDTHH:MM:SSZ.
#pragma once

#include <cstdint>
#include <string>

namespace music_api {

// Seconds since the epoch (may be negative) as YYYY-MM-DDTHH:MM:SSZ.
std::string FormatUtc(int64_t epoch_seconds);
// Appends the same form to `out` without allocating beyond its growth.
void AppendUtc(std::string& out, int64_t epoch_seconds);
std::string NowUtc();

}  // namespace music_api
