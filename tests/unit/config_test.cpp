// The configuration table: defaults, file errors with file:line, environment overrides.
#include <boost/test/unit_test.hpp>
#include <cstdlib>
#include <fstream>
#include <string>

#include "core/config.hpp"

using namespace music_api;

namespace {

std::string WriteTemp(const std::string& text) {
  char path[] = "/tmp/music-api-config-XXXXXX";
  int fd = mkstemp(path);
  BOOST_REQUIRE(fd >= 0);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

}  // namespace

BOOST_AUTO_TEST_SUITE(config)

BOOST_AUTO_TEST_CASE(defaults_and_file_values) {
  unsetenv("MUSIC_API_DB");
  unsetenv("MUSIC_API_PEPPER_FILE");
  auto path = WriteTemp("# comment\n\nworkers = 3\nlisten=/tmp/x.sock\nlisten_mode = 0600\n");
  auto config = LoadConfig(path, true, {});
  BOOST_REQUIRE_MESSAGE(config, (config ? "" : config.error()));
  BOOST_CHECK_EQUAL(config->workers, 3);
  BOOST_CHECK_EQUAL(config->listen, "/tmp/x.sock");
  BOOST_CHECK_EQUAL(config->listen_mode, 0600u);
  BOOST_CHECK_EQUAL(config->request_timeout_seconds, 10);
  BOOST_CHECK_EQUAL(config->database, "dbname=music user=music_api");
  std::remove(path.c_str());
}

BOOST_AUTO_TEST_CASE(errors_name_file_line_and_key) {
  auto path = WriteTemp("workers = 2\nworkers = many\n");
  auto config = LoadConfig(path, true, {});
  BOOST_REQUIRE(!config);
  BOOST_CHECK_MESSAGE(config.error().find(path + ":2: workers:") == 0, config.error());
  std::remove(path.c_str());
  path = WriteTemp("no_such_key = 1\n");
  config = LoadConfig(path, true, {});
  BOOST_REQUIRE(!config);
  BOOST_CHECK(config.error().find("unknown key 'no_such_key'") != std::string::npos);
  std::remove(path.c_str());
  BOOST_CHECK(!LoadConfig("/nonexistent/music-api.conf", true, {}));
  BOOST_CHECK(LoadConfig("/nonexistent/music-api.conf", false, {}));
}

BOOST_AUTO_TEST_CASE(flags_then_environment_override) {
  setenv("MUSIC_API_DB", "host=/tmp dbname=x", 1);
  auto config = LoadConfig("/nonexistent", false, {{"workers", "5"}});
  unsetenv("MUSIC_API_DB");
  BOOST_REQUIRE(config);
  BOOST_CHECK_EQUAL(config->workers, 5);
  BOOST_CHECK_EQUAL(config->database, "host=/tmp dbname=x");
  BOOST_CHECK(!LoadConfig("/nonexistent", false, {{"workers", "-1"}}));
}

// The worker's whole budget (and its alarm) ends before nginx gives up on the upstream, for every
// request_timeout the table accepts; one past the largest is refused.
BOOST_AUTO_TEST_CASE(request_budget_ends_before_nginx_read_timeout) {
  std::ifstream in(MUSIC_API_SOURCE_DIR "/nginx/music-api-upstream.conf");
  std::string line;
  int nginx_read_timeout = 0;
  while (std::getline(in, line)) {
    if (auto at = line.find("fastcgi_read_timeout "); at != std::string::npos && nginx_read_timeout == 0) {
      nginx_read_timeout = std::stoi(line.substr(at + 21));
    }
  }
  BOOST_REQUIRE_GT(nginx_read_timeout, 0);
  BOOST_CHECK_EQUAL(kNginxReadTimeoutSeconds, nginx_read_timeout);
  for (int t = 1;; ++t) {
    auto config = LoadConfig("/nonexistent", false, {{"request_timeout", std::to_string(t)}});
    if (!config) {
      BOOST_CHECK_EQUAL(t, kMaxRequestTimeoutSeconds + 1);
      break;
    }
    BOOST_CHECK_LT(config->RequestAlarmSeconds(), nginx_read_timeout);
  }
  // Every pair the loader accepts keeps the budget under nginx's; a pair that does not is refused
  // with a message naming both keys.
  int refused = 0;
  for (int t = 1; t <= kMaxRequestTimeoutSeconds; ++t) {
    for (int c = 2; c <= 5; ++c) {
      auto config =
          LoadConfig("/nonexistent", false,
                     {{"request_timeout", std::to_string(t)}, {"database_connect_timeout", std::to_string(c)}});
      if (config) {
        BOOST_CHECK_LT(config->RequestAlarmSeconds(), nginx_read_timeout);
      } else {
        ++refused;
        BOOST_CHECK(config.error().find("request_timeout") != std::string::npos);
        BOOST_CHECK(config.error().find("database_connect_timeout") != std::string::npos);
        BOOST_CHECK_GE(2 * (t + 1) + 2 * c + 1, nginx_read_timeout);
      }
    }
  }
  BOOST_CHECK_GT(refused, 0);
}

BOOST_AUTO_TEST_CASE(write_database_defaults_to_the_read_string) {
  auto config = LoadConfig("/nonexistent", false, {{"database", "host=a,b dbname=m"}});
  BOOST_REQUIRE(config);
  BOOST_CHECK_EQUAL(config->WriteDatabase(), "host=a,b dbname=m");
  config =
      LoadConfig("/nonexistent", false,
                 {{"database", "host=a,b dbname=m"}, {"database_write", "host=a,b target_session_attrs=read-write"}});
  BOOST_REQUIRE(config);
  BOOST_CHECK_EQUAL(config->WriteDatabase(), "host=a,b target_session_attrs=read-write");
}

BOOST_AUTO_TEST_CASE(media_base_url_is_a_scheme_and_host_only) {
  // Never empty: public URLs are built from it alone, never from a request's Host header.
  auto defaults = LoadConfig("/nonexistent", false, {});
  BOOST_REQUIRE(defaults);
  BOOST_CHECK_EQUAL(defaults->media_base_url, "https://localhost");
  for (std::string_view good : {"https://api.example.com", "http://127.0.0.1:8443"}) {
    auto config = LoadConfig("/nonexistent", false, {{"media_base_url", std::string(good)}});
    BOOST_REQUIRE_MESSAGE(config, good);
    BOOST_CHECK_EQUAL(config->media_base_url, good);
  }
  for (std::string_view bad :
       {"", "https://api.example.com/", "https://h/media", "ftp://h", "api.example.com", "https://", "https://h?x"}) {
    auto config = LoadConfig("/nonexistent", false, {{"media_base_url", std::string(bad)}});
    BOOST_CHECK_MESSAGE(!config, bad);
  }
}

BOOST_AUTO_TEST_CASE(quotas_have_defaults_and_bounds) {
  auto config = LoadConfig("/nonexistent", false, {});
  BOOST_REQUIRE(config);
  BOOST_CHECK_EQUAL(config->max_collections_per_user, 1000);
  BOOST_CHECK_EQUAL(config->max_share_links_per_user, 10000);
  for (const char* key : {"max_collections_per_user", "max_share_links_per_user"}) {
    BOOST_CHECK(LoadConfig("/nonexistent", false, {{key, "1"}}));
    BOOST_CHECK(LoadConfig("/nonexistent", false, {{key, "100000"}}));
    for (const char* bad : {"0", "-1", "100001", "", "ten"}) {
      auto refused = LoadConfig("/nonexistent", false, {{key, bad}});
      BOOST_CHECK_MESSAGE(!refused && refused.error().find(key) != std::string::npos, key << " = " << bad);
    }
  }
}

BOOST_AUTO_TEST_SUITE_END()
