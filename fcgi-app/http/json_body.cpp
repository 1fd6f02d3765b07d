// Request bodies: one JSON object, parsed with Boost.JSON under size and depth limits.
#include "http/json_body.hpp"

#include <boost/json.hpp>
#include <boost/json/basic_parser_impl.hpp>
#include <cmath>
#include <set>

namespace music_api {
namespace {

namespace json = boost::json;

ApiError BodyError(std::string why) { return ApiError::Validation("body", std::move(why)); }

// A first pass over the text that only looks at keys: Boost.JSON's parse keeps the last of two
// equal keys without a word, and a body whose meaning depends on which one wins is refused.
class DuplicateKeys {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  bool repeated = false;
  std::string duplicate;  // the first key seen twice in one object

  bool on_document_begin(json::error_code&) { return true; }
  bool on_document_end(json::error_code&) { return true; }
  bool on_object_begin(json::error_code&) {
    keys_.emplace_back();
    return true;
  }
  bool on_object_end(std::size_t, json::error_code&) {
    keys_.pop_back();
    return true;
  }
  bool on_array_begin(json::error_code&) { return true; }
  bool on_array_end(std::size_t, json::error_code&) { return true; }
  bool on_key_part(json::string_view s, std::size_t, json::error_code&) {
    key_.append(s.data(), s.size());
    return true;
  }
  bool on_key(json::string_view s, std::size_t, json::error_code& ec) {
    key_.append(s.data(), s.size());
    bool fresh = keys_.back().insert(key_).second;
    if (!fresh) {
      repeated = true;
      duplicate = key_;
      ec = json::error::syntax;  // stops the parse; `duplicate` says why
    }
    key_.clear();
    return fresh;
  }
  bool on_string_part(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_string(json::string_view, std::size_t, json::error_code&) { return true; }
  bool on_number_part(json::string_view, json::error_code&) { return true; }
  bool on_int64(std::int64_t, json::string_view, json::error_code&) { return true; }
  bool on_uint64(std::uint64_t, json::string_view, json::error_code&) { return true; }
  bool on_double(double, json::string_view, json::error_code&) { return true; }
  bool on_bool(bool, json::error_code&) { return true; }
  bool on_null(json::error_code&) { return true; }
  bool on_comment_part(json::string_view, json::error_code&) { return true; }
  bool on_comment(json::string_view, json::error_code&) { return true; }

 private:
  std::vector<std::set<std::string>> keys_;
  std::string key_;
};

bool IsJsonMediaType(std::string_view content_type) {
  std::string_view type = content_type.substr(0, content_type.find(';'));
  while (!type.empty() && type.back() == ' ') type.remove_suffix(1);
  if (type.size() != 16) return false;
  for (size_t i = 0; i < type.size(); ++i) {
    char c = type[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != "application/json"[i]) return false;
  }
  return true;
}

}  // namespace

struct JsonBody::Parsed {
  json::object object;
};

JsonBody::JsonBody(std::unique_ptr<Parsed> parsed) : parsed_(std::move(parsed)) {}
JsonBody::JsonBody(JsonBody&&) noexcept = default;
JsonBody& JsonBody::operator=(JsonBody&&) noexcept = default;
JsonBody::~JsonBody() = default;

Result<JsonBody> JsonBody::Parse(std::string_view content_type, std::string_view body, bool empty_allowed) {
  if (body.empty() && empty_allowed) return JsonBody(std::make_unique<Parsed>());
  if (!IsJsonMediaType(content_type)) {
    return Fail(ApiError{ErrorCode::kUnsupportedMediaType, "Content-Type must be application/json", {}, {}});
  }
  if (body.size() > kMaxBodyBytes)
    return Fail(BodyError("the body exceeds " + std::to_string(kMaxBodyBytes) + " bytes"));
  json::parse_options options;
  options.max_depth = kMaxBodyDepth;  // also bounds the duplicate pass's stack
  json::basic_parser<DuplicateKeys> keys(options);
  json::error_code ec;
  keys.write_some(false, body.data(), body.size(), ec);
  if (keys.handler().repeated) {
    // details.field names the key; an empty key is reported as the body's.
    const std::string& key = keys.handler().duplicate;
    return Fail(ApiError::Validation(key.empty() ? "body" : key, "a key appears more than once"));
  }
  if (ec) return Fail(BodyError("the body is not valid JSON (UTF-8, nested at most 8 deep)"));
  json::value value = json::parse(body, ec, {}, options);
  if (ec) return Fail(BodyError("the body is not valid JSON (UTF-8, nested at most 8 deep)"));
  if (!value.is_object()) return Fail(BodyError("the body must be a JSON object"));
  auto parsed = std::make_unique<Parsed>();
  parsed->object = std::move(value.as_object());
  return JsonBody(std::move(parsed));
}

Result<JsonBody::Text> JsonBody::String(std::string_view name) const {
  const json::value* v = parsed_->object.if_contains(name);
  if (!v) return Text{};
  if (v->is_null()) return Text{Presence::kNull, {}};
  if (!v->is_string()) return Fail(ApiError::Validation(std::string(name), "must be a string"));
  return Text{Presence::kValue, std::string(v->as_string())};
}

Result<JsonBody::Integer> JsonBody::Int(std::string_view name) const {
  const json::value* v = parsed_->object.if_contains(name);
  if (!v) return Integer{};
  if (v->is_null()) return Integer{Presence::kNull, 0};
  if (v->is_int64()) return Integer{Presence::kValue, v->as_int64()};
  if (v->is_uint64()) return Fail(ApiError::Validation(std::string(name), "is too large"));
  if (v->is_double()) {
    double d = v->as_double();
    // The range first: casting a double outside int64's range is undefined.
    if (d > -1e15 && d < 1e15 && std::trunc(d) == d) return Integer{Presence::kValue, static_cast<int64_t>(d)};
  }
  return Fail(ApiError::Validation(std::string(name), "must be an integer"));
}

Result<std::vector<std::string>> JsonBody::StringArray(std::string_view name) const {
  const json::value* v = parsed_->object.if_contains(name);
  if (!v || !v->is_array()) return Fail(ApiError::Validation(std::string(name), "must be an array of strings"));
  std::vector<std::string> out;
  out.reserve(v->as_array().size());
  for (const auto& item : v->as_array()) {
    if (!item.is_string()) return Fail(ApiError::Validation(std::string(name), "must be an array of strings"));
    out.emplace_back(item.as_string());
  }
  return out;
}

size_t CountCharacters(std::string_view utf8) {
  size_t n = 0;
  for (char c : utf8) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

}  // namespace music_api
