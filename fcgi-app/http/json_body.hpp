// Request bodies: one JSON object, parsed with Boost.JSON under size and depth limits, read field
// by field into plain values. Every problem is a 415 or a 422 naming the field.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/error.hpp"

namespace music_api {

// nginx refuses larger bodies first (413, music-api-location.conf); the API checks again.
inline constexpr size_t kMaxBodyBytes = 16 * 1024;
inline constexpr int kMaxBodyDepth = 8;

class JsonBody {
 public:
  // `content_type` must be application/json (parameters such as charset=utf-8 allowed), else 415.
  // The body must be one JSON object, at most kMaxBodyBytes, nested at most kMaxBodyDepth, with no
  // repeated key at any level: else 422 with field "body" (or the repeated key's name). An empty
  // body is an empty object when `empty_allowed` (optional bodies), else 422.
  static Result<JsonBody> Parse(std::string_view content_type, std::string_view body, bool empty_allowed);

  JsonBody(JsonBody&&) noexcept;
  JsonBody& operator=(JsonBody&&) noexcept;
  ~JsonBody();

  enum class Presence { kAbsent, kNull, kValue };
  struct Text {
    Presence presence = Presence::kAbsent;
    std::string value;
  };
  struct Integer {
    Presence presence = Presence::kAbsent;
    int64_t value = 0;
  };
  // A string field (or null, or absent); any other type is a 422 naming it.
  Result<Text> String(std::string_view name) const;
  // An integer field (a JSON number with no fraction that fits in 64 bits), or null, or absent.
  Result<Integer> Int(std::string_view name) const;
  // An array of strings; absent or anything else is a 422 naming it.
  Result<std::vector<std::string>> StringArray(std::string_view name) const;

 private:
  struct Parsed;
  explicit JsonBody(std::unique_ptr<Parsed> parsed);
  std::unique_ptr<Parsed> parsed_;
};

// Unicode code points in valid UTF-8 (names and descriptions are limited in characters).
size_t CountCharacters(std::string_view utf8);

}  // namespace music_api
