// music-api: read the configuration, open the FastCGI socket, hand over to the master.
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/config.hpp"
#include "core/log.hpp"
#include "core/media_keys.hpp"
#include "core/secrets.hpp"
#include "db/library_versions.hpp"
#include "server/listen_socket.hpp"
#include "server/master.hpp"

namespace {

constexpr const char* kUsage =
    "usage: music-api [--config PATH] [--workers N] [--listen SOCKET] [-t | --test | --test-reload]\n"
    "       music-api --version\n"
    "  --config PATH   configuration file (default /etc/music-api/music-api.conf)\n"
    "  --workers N     worker processes (overrides the file)\n"
    "  --listen SOCKET unix socket path or HOST:PORT (overrides the file)\n"
    "  -t, --test      check the configuration and the pepper file, then exit (like nginx -t)\n"
    "  --test-reload   check what a reload re-reads (the configuration, its connection strings,\n"
    "                  the media key file), not the pepper: what systemctl reload runs first\n"
    "  -V, --version   print the version, the git commit and the library versions\n"
    "environment: MUSIC_API_DB (libpq connection string), MUSIC_API_PEPPER_FILE\n";

int Fatal(const std::string& message) {
  std::fprintf(stderr, "%smusic-api: %s\n", music_api::JournalPriorityPrefix("error").data(), message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace music_api;
  MasterOptions options{std::string(kDefaultConfigPath), {}};
  bool test_only = false, test_reload = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(arg + " needs a value");
      return argv[++i];
    };
    try {
      if (arg == "--config") {
        options.config_path = value();
      } else if (arg == "--workers" || arg == "--listen") {
        options.overrides.emplace_back(arg.substr(2), value());
      } else if (arg == "--test" || arg == "-t") {
        test_only = true;
      } else if (arg == "--test-reload") {
        // systemd 252 gives a unit's credentials (the pepper) to ExecStart= only, not to an
        // ExecReload= process of a unit with mount isolation (systemd issue #35227), and a
        // credential cannot change before a restart anyway: a reload check leaves it out.
        test_reload = true;
      } else if (arg == "--help" || arg == "-h") {
        std::fputs(kUsage, stdout);
        return 0;
      } else if (arg == "--version" || arg == "-V") {
        std::fputs(VersionReport("music-api").c_str(), stdout);
        return 0;
      } else {
        std::fputs(kUsage, stderr);
        return Fatal("unknown argument " + arg);
      }
    } catch (const std::exception& e) {
      return Fatal(e.what());
    }
  }

  auto config = LoadConfig(options.config_path, true, options.overrides);
  if (!config) return Fatal(config.error());
  if (test_reload) {
    if (std::string bad = CheckConfigReferences(*config); !bad.empty()) return Fatal(bad);
    std::fprintf(stderr, "music-api: configuration %s is valid for a reload\n", options.config_path.c_str());
    return 0;
  }
  std::string error;
  auto pepper = ReadPepperFile(config->key_pepper_file, error);
  if (!pepper) return Fatal(error);
  if (std::string bad = CheckConfigReferences(*config); !bad.empty()) return Fatal(bad);
  if (test_only) {
    std::fprintf(stderr, "music-api: configuration %s is valid\n", options.config_path.c_str());
    return 0;
  }
  auto socket = OpenListenSocket(*config);
  if (!socket) return Fatal(socket.error());
  auto media_keys = ReadMediaKeyFile(config->media_keys_file);  // checked above: read once more here
  if (!media_keys) return Fatal(media_keys.error());
  return RunMaster(std::move(*config), WorkerSecrets{std::move(*pepper), std::move(*media_keys)}, std::move(*socket),
                   std::move(options));
}
