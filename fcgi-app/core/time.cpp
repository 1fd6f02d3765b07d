// UTC timestamps as the API shows them: YYYY-MM-DDTHH:MM:SSZ.
#include "core/time.hpp"

#include <cstdio>
#include <ctime>

namespace music_api {

void AppendUtc(std::string& out, int64_t epoch_seconds) {
  time_t t = static_cast<time_t>(epoch_seconds);
  struct tm tm {};
  gmtime_r(&t, &tm);
  char buf[32];
  int n = std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                        tm.tm_hour, tm.tm_min, tm.tm_sec);
  out.append(buf, static_cast<size_t>(n));
}

std::string FormatUtc(int64_t epoch_seconds) {
  std::string out;
  AppendUtc(out, epoch_seconds);
  return out;
}

std::string NowUtc() { return FormatUtc(static_cast<int64_t>(std::time(nullptr))); }

}  // namespace music_api
