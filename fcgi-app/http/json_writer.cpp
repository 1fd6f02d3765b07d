// Appending JSON scalars to a buffer: strings escaped by Boost.JSON, numbers in shortest form.
#include "http/json_writer.hpp"

#include <boost/json/serializer.hpp>
#include <charconv>
#include <cmath>

namespace music_api {

void AppendJsonString(std::string& out, std::string_view text) {
  // One serializer per process, reset per string: escaping without a temporary allocation.
  static thread_local boost::json::serializer serializer;
  serializer.reset(boost::json::string_view(text.data(), text.size()));
  char buf[512];
  while (!serializer.done()) {
    boost::json::string_view chunk = serializer.read(buf, sizeof buf);
    out.append(chunk.data(), chunk.size());
  }
}

void AppendJsonNumber(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out.append("null");
    return;
  }
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, ec == std::errc() ? static_cast<size_t>(end - buf) : 0);
}

void AppendJsonInteger(std::string& out, int64_t value) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, ec == std::errc() ? static_cast<size_t>(end - buf) : 0);
}

}  // namespace music_api
