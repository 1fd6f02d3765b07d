#include "db/library_versions.hpp"

#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <soci/version.h>

#include <boost/version.hpp>

#include "core/build_info.hpp"

namespace music_api {

std::string VersionReport(std::string_view program) {
  auto dotted = [](int major, int minor, int patch) {
    return std::to_string(major) + "." + std::to_string(minor) + "." + std::to_string(patch);
  };
  const int libpq = PQlibVersion();  // e.g. 150010: major * 10000 + minor since PostgreSQL 10
  std::string out;
  out.append(program).append(" ").append(BuildVersion()).append(" (git ").append(BuildCommit()).append(")\n");
  out.append("libpq ").append(std::to_string(libpq / 10000)).append(".").append(std::to_string(libpq % 10000));
  out.append("\nSOCI ").append(dotted(SOCI_VERSION / 100000, SOCI_VERSION / 100 % 1000, SOCI_VERSION % 100));
  out.append("\nBoost ").append(dotted(BOOST_VERSION / 100000, BOOST_VERSION / 100 % 1000, BOOST_VERSION % 100));
  out.append("\nlibfcgi ").append(MUSIC_API_FCGI_VERSION);
  out.append("\nOpenSSL ").append(OpenSSL_version(OPENSSL_VERSION_STRING)).append("\n");
  return out;
}

}  // namespace music_api
