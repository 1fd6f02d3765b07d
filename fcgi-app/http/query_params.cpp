// Validation of the listing's query string into typed parameters.
#include "http/query_params.hpp"

#include <algorithm>
#include <array>
#include <charconv>

#include "core/text.hpp"

namespace music_api {
namespace {

enum Field { kLimit, kOffset, kMode, kEngine, kCollectionId, kFieldCount };
constexpr std::array<std::string_view, kFieldCount> kFieldNames = {"limit", "offset", "mode", "engine",
                                                                   "collection_id"};

struct RawValue {
  int count = 0;
  bool malformed = false;  // the value's percent-encoding is broken: reported under this name
  std::string value;
};

// Plain ASCII decimal digits only: no sign, space, point or hex; nullopt when out of [min, max].
std::optional<int64_t> ParseBoundedInteger(std::string_view text, int64_t min, int64_t max) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
  int64_t n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < min || n > max) return std::nullopt;
  return n;
}

Result<std::optional<std::string>> ValidateFilter(std::string_view name, std::string value) {
  if (value.empty()) return std::optional<std::string>{};
  if (value.size() > kMaxFilterBytes) {
    return Fail(ApiError::Validation(std::string(name), std::string(name) + " must be at most 64 bytes"));
  }
  if (!IsValidUtf8(value) || HasControlCharacter(value)) {
    return Fail(
        ApiError::Validation(std::string(name), std::string(name) + " must be valid UTF-8 without control characters"));
  }
  return std::optional<std::string>(std::move(value));
}

// The listing's rules, with the page size bounds of the resource being paged.
Result<ListParams> ParseQuery(std::string_view query, int default_limit, int max_limit) {
  if (query.size() > kMaxQueryBytes) {
    return Fail(ApiError::Validation("query", "query string longer than 4096 bytes"));
  }
  std::array<RawValue, kFieldCount> raw;
  size_t pairs = 0;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    if (++pairs > kMaxQueryPairs) return Fail(ApiError::Validation("query", "more than 64 query parameters"));
    size_t eq = pair.find('=');
    auto name = PercentDecode(pair.substr(0, eq));
    auto value = PercentDecode(eq == std::string_view::npos ? std::string_view{} : pair.substr(eq + 1));
    const auto known = name ? std::find(kFieldNames.begin(), kFieldNames.end(), *name) : kFieldNames.end();
    // A broken name, or a broken value of a name we do not know, cannot be pinned on a parameter.
    if (known == kFieldNames.end()) {
      if (!name || !value) return Fail(ApiError::Validation("query", "malformed percent-encoding in query string"));
      continue;
    }
    RawValue& field = raw[static_cast<size_t>(known - kFieldNames.begin())];
    field.count++;
    field.malformed = !value;
    field.value = value ? std::move(*value) : std::string();
  }

  // Fields are judged in a fixed order; for each, a repeat is as bad as a bad value.
  ListParams params;
  params.limit = default_limit;
  for (size_t f = 0; f < kFieldCount; ++f) {
    std::string name(kFieldNames[f]);
    if (raw[f].count > 1) return Fail(ApiError::Validation(name, name + " given more than once"));
    if (raw[f].malformed) return Fail(ApiError::Validation(name, "malformed percent-encoding in " + name));
    std::string& value = raw[f].value;
    switch (static_cast<Field>(f)) {
      case kLimit:
        if (!value.empty()) {
          auto limit = ParseBoundedInteger(value, 1, max_limit);
          if (!limit) {
            return Fail(ApiError::Validation(name, "limit must be an integer from 1 to " + std::to_string(max_limit)));
          }
          params.limit = static_cast<int>(*limit);
        }
        break;
      case kOffset:
        if (!value.empty()) {
          auto offset = ParseBoundedInteger(value, 0, kMaxOffset);
          if (!offset) return Fail(ApiError::Validation(name, "offset must be an integer from 0 to 2147483647"));
          params.offset = *offset;
        }
        break;
      case kMode:
      case kEngine: {
        auto filter = ValidateFilter(name, std::move(value));
        if (!filter) return Fail(filter.error());
        (f == kMode ? params.mode : params.engine) = std::move(*filter);
        break;
      }
      case kCollectionId:
        if (!value.empty()) {
          if (!IsResourceId(value, "mcoll_")) {
            return Fail(
                ApiError::Validation(name, "collection_id must be mcoll_ followed by 1 to 64 of A-Z a-z 0-9 _ -"));
          }
          params.collection_id = std::move(value);
        }
        break;
      case kFieldCount:
        break;
    }
  }
  return params;
}

}  // namespace

Result<ListParams> ParseListParams(std::string_view query) { return ParseQuery(query, kDefaultLimit, kMaxLimit); }

Result<PageParams> ParsePageParams(std::string_view query, int default_limit, int max_limit) {
  auto parsed = ParseQuery(query, default_limit, max_limit);
  if (!parsed) return Fail(parsed.error());
  return PageParams{parsed->limit, parsed->offset};
}

}  // namespace music_api
