// One-line structured logs (logfmt) on stderr, where journald collects them.
#include "core/log.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "core/time.hpp"

namespace music_api {
namespace {

void AppendValue(std::string& line, std::string_view value) {
  bool quote = value.empty() || value.find_first_of(" \"=\\") != std::string_view::npos;
  if (quote) line.push_back('"');
  for (char c : value) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      line.push_back('\\');
      line.push_back(c);
    } else if (u < 0x20 || u == 0x7F) {
      // Never let a logged value start a new line (log injection).
      static constexpr char kHex[] = "0123456789abcdef";
      line.append("\\x");
      line.push_back(kHex[u >> 4]);
      line.push_back(kHex[u & 15]);
    } else {
      line.push_back(c);
    }
  }
  if (quote) line.push_back('"');
}

bool StderrIsJournal() {
  const char* stream = std::getenv("JOURNAL_STREAM");  // "DEVICE:INODE" of the stream systemd connected
  struct stat st {};
  if (stream == nullptr || fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long device = 0, inode = 0;
  return std::sscanf(stream, "%llu:%llu", &device, &inode) == 2 && device == st.st_dev && inode == st.st_ino;
}

}  // namespace

std::string_view JournalPriorityPrefix(std::string_view level) {
  static const bool journal = StderrIsJournal();  // stderr never changes after start
  if (!journal) return "";
  if (level == "error") return "<3>";
  if (level == "warn") return "<4>";
  if (level == "debug") return "<7>";
  return "<6>";
}

void Log(std::string_view level, std::string_view event, std::initializer_list<LogField> fields) {
  std::string line;
  line.reserve(256);
  line.append(JournalPriorityPrefix(level))
      .append("ts=")
      .append(NowUtc())
      .append(" level=")
      .append(level)
      .append(" event=")
      .append(event);
  for (const auto& [key, value] : fields) {
    line.push_back(' ');
    line.append(key).push_back('=');
    AppendValue(line, value);
  }
  line.push_back('\n');
  ssize_t ignored = write(STDERR_FILENO, line.data(), line.size());
  (void)ignored;
}

}  // namespace music_api
