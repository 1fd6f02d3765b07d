// What lets a client poll the list cheaply: page validators and links to neighbouring pages.
#include "http/page_links.hpp"

#include <algorithm>

#include "core/secrets.hpp"
#include "core/text.hpp"
#include "http/json_writer.hpp"

namespace music_api {
namespace {

std::string_view Opaque(std::string_view tag) {
  if (tag.starts_with("W/")) tag.remove_prefix(2);
  return tag;
}

void AppendLink(std::string& out, std::string_view org_id, const ListParams& params, int64_t offset,
                std::string_view rel) {
  if (!out.empty()) out.append(", ");
  out.append("</v1/music/").append(org_id).append("/tracks?limit=");
  AppendJsonInteger(out, params.limit);
  out.append("&offset=");
  AppendJsonInteger(out, offset);
  auto filter = [&](std::string_view name, const std::optional<std::string>& value) {
    if (!value) return;
    out.append("&").append(name).append("=");
    AppendPercentEncoded(out, *value);
  };
  filter("mode", params.mode);
  filter("engine", params.engine);
  filter("collection_id", params.collection_id);
  out.append(">; rel=\"").append(rel).append("\"");
}

}  // namespace

std::string WeakEtag(std::string_view body) { return "W/\"" + Sha256Hex(body).substr(0, 32) + "\""; }

bool IfNoneMatch(std::string_view header, std::string_view etag) {
  while (!header.empty()) {
    size_t comma = header.find(',');
    std::string_view tag = TrimBlanks(header.substr(0, comma));
    if (tag == "*" || (!tag.empty() && Opaque(tag) == Opaque(etag))) return true;
    header = comma == std::string_view::npos ? std::string_view{} : header.substr(comma + 1);
  }
  return false;
}

void AppendPageLinks(std::string& out, std::string_view org_id, const ListParams& params, bool has_next) {
  AppendLink(out, org_id, params, 0, "first");
  if (params.offset > 0) AppendLink(out, org_id, params, std::max<int64_t>(0, params.offset - params.limit), "prev");
  if (has_next) AppendLink(out, org_id, params, params.offset + params.limit, "next");
}

}  // namespace music_api
