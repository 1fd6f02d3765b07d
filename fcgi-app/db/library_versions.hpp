// What `music-api --version` and `music-admin --version` print.
#pragma once

#include <string>
#include <string_view>

namespace music_api {

// "PROGRAM VERSION (git COMMIT)" and, one per line, the libraries: libpq as loaded at run time;
// SOCI, Boost, libfcgi and OpenSSL as built against (OpenSSL also as loaded).
std::string VersionReport(std::string_view program);

}  // namespace music_api
