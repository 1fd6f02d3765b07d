// Multi-host connection strings through libpq's own parser (PQconninfoParse), never by hand: the
// key=value and URI forms, quoting and escapes are libpq's business.
#include "db/conninfo.hpp"

#include <libpq-fe.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <vector>

namespace music_api {
namespace {

using Options = std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)>;

Options Parse(const std::string& conninfo) {
  char* error = nullptr;
  Options options(PQconninfoParse(conninfo.c_str(), &error), &PQconninfoFree);
  if (!options) {
    std::string message = error ? error : "out of memory";
    PQfreemem(error);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    throw std::invalid_argument("database connection string: " + message);
  }
  return options;
}

std::vector<std::string> SplitCommas(std::string_view list) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    size_t comma = list.find(',', start);
    parts.emplace_back(list.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
    if (comma == std::string_view::npos) return parts;
    start = comma + 1;
  }
}

// A list of one applies to every host (libpq's rule for port); longer lists rotate with the hosts.
std::string Rotated(std::string_view list, int first, int hosts) {
  std::vector<std::string> parts = SplitCommas(list);
  if (static_cast<int>(parts.size()) != hosts || hosts <= 1) return std::string(list);
  std::string out;
  for (int i = 0; i < hosts; ++i) {
    if (i > 0) out += ',';
    out += parts[static_cast<size_t>((first + i) % hosts)];
  }
  return out;
}

void AppendQuoted(std::string& out, std::string_view keyword, std::string_view value) {
  if (!out.empty()) out += ' ';
  out.append(keyword).append("='");
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
}

bool IsRotated(std::string_view keyword) { return keyword == "host" || keyword == "hostaddr" || keyword == "port"; }

}  // namespace

HostList::HostList(std::string_view conninfo, const ConnectionOptions& options, bool primary_only)
    : conninfo_(conninfo), options_(options), primary_only_(primary_only) {
  Options parsed = Parse(conninfo_);
  for (PQconninfoOption* o = parsed.get(); o->keyword; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    std::string_view keyword = o->keyword;
    if (keyword == "host" || keyword == "hostaddr") {
      hosts_ = std::max(hosts_, static_cast<int>(SplitCommas(o->val).size()));
    }
  }
}

std::string HostList::StartingAt(int first) const {
  Options parsed = Parse(conninfo_);
  const int start = hosts_ > 0 ? ((first % hosts_) + hosts_) % hosts_ : 0;
  std::string out;
  for (PQconninfoOption* o = parsed.get(); o->keyword; ++o) {
    if (o->val == nullptr || *o->val == '\0') continue;
    std::string_view keyword = o->keyword;
    // The configured values win over the string's: they are what the request budget counts on.
    if (keyword == "connect_timeout" || keyword.starts_with("keepalives") || keyword == "tcp_user_timeout") continue;
    if (primary_only_ && keyword == "target_session_attrs") continue;
    AppendQuoted(out, keyword, IsRotated(keyword) ? Rotated(o->val, start, hosts_) : std::string(o->val));
  }
  AppendQuoted(out, "connect_timeout", std::to_string(options_.connect_timeout_seconds));
  AppendQuoted(out, "keepalives", "1");
  AppendQuoted(out, "keepalives_idle", std::to_string(options_.keepalives_idle_seconds));
  AppendQuoted(out, "keepalives_interval", std::to_string(options_.keepalives_interval_seconds));
  AppendQuoted(out, "keepalives_count", std::to_string(options_.keepalives_count));
  AppendQuoted(out, "tcp_user_timeout", std::to_string(options_.tcp_user_timeout_ms));
  if (primary_only_) AppendQuoted(out, "target_session_attrs", "read-write");
  return out;
}

int HostList::IndexOf(std::string_view host, std::string_view port) const {
  Options parsed = Parse(conninfo_);
  std::vector<std::string> hosts, hostaddrs, ports;
  for (PQconninfoOption* o = parsed.get(); o->keyword; ++o) {
    if (o->val == nullptr) continue;
    std::string_view keyword = o->keyword;
    if (keyword == "host") hosts = SplitCommas(o->val);
    if (keyword == "hostaddr") hostaddrs = SplitCommas(o->val);
    if (keyword == "port") ports = SplitCommas(o->val);
  }
  for (int i = 0; i < hosts_; ++i) {
    auto at = [i](const std::vector<std::string>& v) -> std::string_view {
      if (v.empty()) return {};
      return v.size() == 1 ? v[0] : (static_cast<size_t>(i) < v.size() ? std::string_view(v[i]) : std::string_view());
    };
    bool host_matches = at(hosts) == host || at(hostaddrs) == host;
    bool port_matches = ports.empty() || at(ports) == port || at(ports).empty();
    if (host_matches && port_matches) return i;
  }
  return -1;
}

}  // namespace music_api
