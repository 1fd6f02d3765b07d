// libFuzzer target for the request parser and validator: path, query string and key headers.
// Input: METHOD \n PATH \n QUERY \n X-API-KEY \n AUTHORIZATION (missing parts are empty).
// Beyond "no crash, no sanitizer report" it checks the invariants the pipeline relies on.
#include <boost/json.hpp>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "auth/auth.hpp"
#include "core/secrets.hpp"
#include "core/text.hpp"
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
  std::string_view parts[5];
  for (auto& part : parts) {
    size_t newline = input.find('\n');
    part = input.substr(0, newline);
    input = newline == std::string_view::npos ? std::string_view() : input.substr(newline + 1);
  }
  auto [method, path, query, x_api_key, authorization] = parts;

  auto route = MatchRoute(method, path);
  if (route) {
    Require(method == "GET" || method == "HEAD");
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
  return 0;
}
