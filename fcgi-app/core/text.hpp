// Byte-level text checks shared by the request parser and the admin CLI.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace music_api {

// Strict UTF-8 (no overlong forms, no surrogates, nothing above U+10FFFF).
bool IsValidUtf8(std::string_view text);

// True for C0 controls, DEL and the C1 controls U+0080..U+009F. Expects valid UTF-8.
bool HasControlCharacter(std::string_view text);

// application/x-www-form-urlencoded decoding: `+` is a space; nullopt on `%zz` or a lone `%`.
std::optional<std::string> PercentDecode(std::string_view encoded);

// `s` without leading and trailing spaces and tabs (HTTP header values).
std::string_view TrimBlanks(std::string_view s);

// Appends `text` percent-encoded for a URI query value: RFC 3986 unreserved characters stay.
void AppendPercentEncoded(std::string& out, std::string_view text);

// PREFIX followed by 1..64 of [A-Za-z0-9_-]: the shape of every public resource id.
bool IsResourceId(std::string_view text, std::string_view prefix);

}  // namespace music_api
