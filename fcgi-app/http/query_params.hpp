// Validation of the listing's query string into typed parameters.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/error.hpp"

namespace music_api {

inline constexpr int kDefaultLimit = 50;
inline constexpr int kMaxLimit = 100;
inline constexpr int64_t kMaxOffset = 2147483647;
inline constexpr size_t kMaxFilterBytes = 64;
// Caps against resource exhaustion; nginx's header limits sit in front of these.
inline constexpr size_t kMaxQueryBytes = 4096;
inline constexpr size_t kMaxQueryPairs = 64;

struct ListParams {
  int limit = kDefaultLimit;
  int64_t offset = 0;
  std::optional<std::string> mode;
  std::optional<std::string> engine;
  std::optional<std::string> collection_id;
};

// Names are case-sensitive and unknown names ignored; an empty value means absent. A 422 names the
// first bad parameter in the order limit, offset, mode, engine, collection_id, or `query` when the
// string as a whole is malformed.
Result<ListParams> ParseListParams(std::string_view query);

// limit and offset of other pages (collections 1-100, default 50; a collection's entries 1-500,
// default 200), by the listing's rules.
struct PageParams {
  int limit;
  int64_t offset;
};
Result<PageParams> ParsePageParams(std::string_view query, int default_limit, int max_limit);

}  // namespace music_api
