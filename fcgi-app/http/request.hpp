// What the pipeline needs of a FastCGI request, as views into the request's parameters.
#pragma once

#include <optional>
#include <string_view>

namespace music_api {

struct Request {
  std::string_view method;         // REQUEST_METHOD
  std::string_view uri;            // REQUEST_URI: the raw path and query, as the client sent it
  std::string_view query;          // QUERY_STRING
  std::string_view x_api_key;      // HTTP_X_API_KEY
  std::string_view authorization;  // HTTP_AUTHORIZATION
  std::string_view if_none_match;  // HTTP_IF_NONE_MATCH
  std::string_view host;           // HTTP_HOST: where signed media URLs point unless media_base_url says
  std::string_view content_type;   // CONTENT_TYPE
  std::string_view remote_addr;    // REMOTE_ADDR: for the share links' audit log
  std::string_view body;           // the request body, at most kMaxBodyBytes + 1 bytes of it
  // MUSIC_API_INTERNAL: set only by nginx's host-only status location ("status" or "ping");
  // a client cannot set FastCGI params, only HTTP_* headers.
  std::string_view internal_endpoint;
  // HTTP_IDEMPOTENCY_KEY: nullopt when the header is absent (present but empty is refused).
  std::optional<std::string_view> idempotency_key;

  std::string_view Path() const { return uri.substr(0, uri.find('?')); }
};

}  // namespace music_api
