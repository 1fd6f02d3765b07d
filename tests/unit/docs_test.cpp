// Every configuration key is documented in the example config and in the README.
#include <boost/test/unit_test.hpp>
#include <fstream>
#include <sstream>

#include "core/config.hpp"

#ifndef MUSIC_API_SOURCE_DIR
#error "MUSIC_API_SOURCE_DIR must name the source tree"
#endif

namespace {

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  BOOST_REQUIRE_MESSAGE(in, "cannot read " << path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_config_key_is_documented) {
  std::string example = Slurp(MUSIC_API_SOURCE_DIR "/systemd/music-api.conf.example");
  std::string readme = Slurp(MUSIC_API_SOURCE_DIR "/README.md");
  for (const auto& key : music_api::ConfigKeys()) {
    BOOST_CHECK_MESSAGE(example.find("\n" + std::string(key.name) + " =") != std::string::npos,
                        "example config lacks " << key.name);
    BOOST_CHECK_MESSAGE(readme.find("`" + std::string(key.name) + "`") != std::string::npos,
                        "README lacks " << key.name);
  }
  // And the example parses: it is what a fresh install starts from.
  auto config = music_api::LoadConfig(MUSIC_API_SOURCE_DIR "/systemd/music-api.conf.example", true, {});
  BOOST_CHECK_MESSAGE(config, (config ? "" : config.error()));
}
