// Appending JSON scalars to a buffer: strings escaped by Boost.JSON, numbers in shortest form.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace music_api {

void AppendJsonString(std::string& out, std::string_view text);
// Shortest round-trip form (119.4, not 1.194E2); JSON has no NaN or infinity, so those are null.
void AppendJsonNumber(std::string& out, double value);
void AppendJsonInteger(std::string& out, int64_t value);

}  // namespace music_api
