#include "core/build_info.hpp"

namespace music_api {

std::string_view BuildVersion() { return MUSIC_API_VERSION; }
std::string_view BuildCommit() { return MUSIC_API_GIT_COMMIT; }

}  // namespace music_api
