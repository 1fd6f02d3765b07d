// libFuzzer target for the request parser and validator: route, query string, key headers, the
// Idempotency-Key header and JSON bodies.
// Input: METHOD \n PATH \n QUERY \n X-API-KEY \n AUTHORIZATION \n IDEMPOTENCY-KEY \n BODY (the body
// is the rest; missing parts are empty).
// Beyond "no crash, no sanitizer report" it checks the invariants the pipeline relies on.
#include <boost/json.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/auth.hpp"
#include "core/secrets.hpp"
#include "core/text.hpp"
#include "http/idempotency_key.hpp"
#include "http/json_body.hpp"
#include "http/query_params.hpp"
#include "http/render.hpp"
#include "http/response.hpp"
#include "http/route.hpp"

using namespace music_api;

namespace {

void Require(bool condition) {
  if (!condition) std::abort();
}

void RequireValidJson(const std::string& text) {
  boost::system::error_code ec;
  boost::json::parse(text, ec);
  Require(!ec);
}

void CheckError(const ApiError& error) {
  Response response;
  SetError(response, error, "req_fuzz", 2);
  RequireValidJson(response.body);
  Require(response.status == Describe(error.code).status);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view parts[6];
  for (auto& part : parts) {
    size_t newline = input.find('\n');
    part = input.substr(0, newline);
    input = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  }
  auto [method, path, query, x_api_key, authorization, idempotency_key] = parts;
  const std::string_view body = input;

  auto route = MatchRoute(method, path);
  if (route) {
    // The route table answers this method on this path: the same path's 405 lists it in Allow.
    auto probe = MatchRoute("TRACE", path);
    Require(!probe && probe.error().code == ErrorCode::kMethodNotAllowed);
    const std::string allow = ", " + std::string(probe.error().allow) + ",";
    Require(allow.find(", " + std::string(method) + ",") != std::string::npos);
    if (route->organization_id) Require(IsResourceId(*route->organization_id, "org_"));
  } else {
    Require(route.error().code == ErrorCode::kResourceNotFound || route.error().code == ErrorCode::kMethodNotAllowed);
    CheckError(route.error());
  }

  auto params = ParseListParams(query);
  if (params) {
    Require(params->limit >= 1 && params->limit <= kMaxLimit);
    Require(params->offset >= 0 && params->offset <= kMaxOffset);
    for (const auto* filter : {&params->mode, &params->engine}) {
      if (*filter) {
        Require(!(*filter)->empty() && (*filter)->size() <= kMaxFilterBytes);
        Require(IsValidUtf8(**filter) && !HasControlCharacter(**filter));
      }
    }
    if (params->collection_id) Require(IsResourceId(*params->collection_id, "mcoll_"));
    // A page built from these values must render as JSON (titles come from a UTF-8 database).
    TrackPage page;
    page.Resize(1);
    page.id[0] = params->collection_id.value_or("mtrack_x");
    page.title[0] = params->mode.value_or("");
    page.engine[0] = params->engine.value_or("e");
    page.mode[0] = params->mode.value_or("m");
    page.licence_class[0] = "unclear";
    page.created_at[0] = params->offset;
    std::string body;
    RenderTrackPage(page, params->limit, params->offset, body);
    RequireValidJson(body);
  } else {
    const std::string& field = params.error().field;
    Require(params.error().code == ErrorCode::kValidationError);
    Require(field == "query" || field == "limit" || field == "offset" || field == "mode" || field == "engine" ||
            field == "collection_id");
    CheckError(params.error());
  }

  if (auto key = PresentedApiKey(x_api_key, authorization)) {
    Require(!key->empty());
    if (auto parsed = ParseApiKey(*key)) Require(FormatApiKey(*parsed) == *key);
  }
  if (auto decoded = PercentDecode(query)) Require(decoded->size() <= query.size());

  if (auto key = ParseIdempotencyKey(idempotency_key)) {
    Require(!key->empty() && key->size() <= kMaxIdempotencyKeyBytes);
    for (char c : *key) Require(c >= 0x20 && c <= 0x7E);
  } else {
    Require(key.error().code == ErrorCode::kValidationError && key.error().field == "Idempotency-Key");
    CheckError(key.error());
  }

  // A body: one JSON object or a 415/422 naming where; every field read is a value or a 422 naming it.
  auto parsed = JsonBody::Parse("application/json", body, true);
  if (!parsed) {
    Require(parsed.error().code == ErrorCode::kValidationError && !parsed.error().field.empty());
    CheckError(parsed.error());
    return 0;
  }
  Require(body.size() <= kMaxBodyBytes);
  for (std::string_view name : {"name", "description", "track_id", "visibility"}) {
    auto text = parsed->String(name);
    if (!text) {
      Require(text.error().code == ErrorCode::kValidationError && text.error().field == name);
    } else if (text->presence == JsonBody::Presence::kValue) {
      Require(IsValidUtf8(text->value));
    }
  }
  auto days = parsed->Int("expires_in_days");
  Require(days || days.error().field == "expires_in_days");
  auto ids = parsed->StringArray("ordered_track_ids");
  Require(ids || ids.error().field == "ordered_track_ids");
  // Only application/json is read: a body of any other type is a 415 before it is looked at (an
  // optional body left empty needs no type).
  auto wrong_type = JsonBody::Parse("text/plain", body, true);
  Require(body.empty() ? wrong_type.has_value()
                       : !wrong_type && wrong_type.error().code == ErrorCode::kUnsupportedMediaType);
  return 0;
}
