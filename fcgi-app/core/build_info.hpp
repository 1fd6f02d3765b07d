// This build's identity, for --version and the music_api_build_info metric.
#pragma once

#include <string_view>

namespace music_api {

// The project version (CMake's project(VERSION)).
std::string_view BuildVersion();
// The git commit the tree was configured from ("unknown" outside a git checkout).
std::string_view BuildCommit();

}  // namespace music_api
