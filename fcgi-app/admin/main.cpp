// music-admin: schema migrations and the records behind the API (orgs, users, keys, tracks…).
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include <cstdlib>
#include <iostream>
#include <set>
#include <string_view>

#include "admin/cli.hpp"
#include "core/config.hpp"
#include "core/secrets.hpp"
#include "db/library_versions.hpp"

namespace music_api::admin {
namespace {

struct Command {
  std::string_view words;
  int (*run)(Context&);
  std::string_view usage;
};

constexpr Command kCommands[] = {
    {"migrate", Migrate, "migrate"},
    {"org create", OrgCreate, "org create NAME"},
    {"user create", UserCreate, "user create EMAIL"},
    {"member add", MemberAdd, "member add ORG USER [--capability CAP]..."},
    {"member remove", MemberRemove, "member remove ORG USER"},
    {"key create", KeyCreate, "key create USER [--expires-at RFC3339]"},
    {"key revoke", KeyRevoke, "key revoke KEY_ID_OR_KEY"},
    {"track create", TrackCreate,
     "track create ORG --engine E --mode M [--title T] [--duration SECONDS] [--instrumental] "
     "[--licence-class C] [--created-at RFC3339] [--creator USER] [--audio FILE] [--stem NAME=FILE]... "
     "[--media-root DIR]"},
    {"track audio", TrackAudio, "track audio TRACK FILE [--stem NAME] [--media-root DIR]"},
    {"media-key rotate", MediaKeyRotate, "media-key rotate [--file PATH]   (prints the new key id)"},
    {"library save", LibrarySave, "library save ORG USER TRACK [--saved-at RFC3339]"},
    {"library unsave", LibraryUnsave, "library unsave ORG USER TRACK"},
    {"collection create", CollectionCreate, "collection create ORG USER NAME"},
    {"collection add", CollectionAdd, "collection add COLLECTION TRACK   (appended at the end)"},
    {"share revoke", ShareRevoke, "share revoke SHARE_ID   (mslink_…: the link answers 404 from then on)"},
    {"seed", Seed, "seed --users N --tracks N --saves-per-user N [--keys-file PATH]"},
    {"check", Check, "check   (consistency report of the denormalized copies; exit 1 on drift)"},
    {"explain", Explain, "explain   (the generic plan of every listing variant)"},
};

const std::set<std::string> kValueOptions = {"db",       "config", "capability", "expires-at",     "engine",
                                             "mode",     "title",  "duration",   "licence-class",  "created-at",
                                             "saved-at", "users",  "tracks",     "saves-per-user", "keys-file",
                                             "creator",  "audio",  "stem",       "media-root",     "file"};
const std::set<std::string> kFlagOptions = {"instrumental", "help", "version"};

void PrintUsage(std::ostream& out) {
  out << "usage: music-admin [--db CONNINFO] [--config PATH] COMMAND\n"
         "       music-admin --version\n"
         "The database is --db or MUSIC_API_DB (a libpq connection string for the schema owner).\n"
         "Key hashing reads the pepper file named by MUSIC_API_PEPPER_FILE or the config's key_pepper_file.\n"
         "commands:\n";
  for (const auto& command : kCommands) out << "  music-admin " << command.usage << "\n";
}

Args Parse(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.starts_with("--") && arg.size() > 2) {
      std::string name = arg.substr(2), value;
      size_t eq = name.find('=');
      bool inline_value = eq != std::string::npos;
      if (inline_value) value = name.substr(eq + 1), name = name.substr(0, eq);
      if (kFlagOptions.contains(name) && !inline_value) {
        args.options[name].push_back("");
      } else if (kValueOptions.contains(name)) {
        if (!inline_value) {
          if (i + 1 >= argc) throw UsageError("--" + name + " needs a value");
          value = argv[++i];
        }
        args.options[name].push_back(value);
      } else {
        throw UsageError("unknown option --" + name);
      }
    } else {
      args.positional.push_back(arg);
    }
  }
  return args;
}

}  // namespace

std::optional<std::string> Args::Option(const std::string& name) const {
  auto it = options.find(name);
  if (it == options.end()) return std::nullopt;
  if (it->second.size() > 1) throw UsageError("--" + name + " given more than once");
  return it->second.front();
}

const std::string& Args::At(size_t index, const char* what) const {
  if (index >= positional.size()) throw UsageError(std::string("missing ") + what);
  return positional[index];
}

void Args::ExpectPositional(size_t count, const char* usage) const {
  if (positional.size() != count) throw UsageError(std::string("usage: music-admin ") + usage);
}

soci::session& Context::Session() {
  if (!session_) {
    if (conninfo.empty()) throw UsageError("no database: pass --db CONNINFO or set MUSIC_API_DB");
    session_ = std::make_unique<soci::session>(soci::postgresql, conninfo);
  }
  return *session_;
}

Context::~Context() = default;

std::string Context::Pepper() const {
  auto config = LoadConfig(config_path, config_explicit, {});
  if (!config) throw UsageError(config.error());
  std::string error;
  auto pepper = ReadPepperFile(config->key_pepper_file, error);
  if (!pepper) throw UsageError(error + " (set MUSIC_API_PEPPER_FILE or key_pepper_file in " + config_path + ")");
  return *pepper;
}

}  // namespace music_api::admin

int main(int argc, char** argv) {
  using namespace music_api::admin;
  try {
    Context context;
    context.args = Parse(argc, argv);
    if (context.args.Flag("version")) {
      std::cout << music_api::VersionReport("music-admin");
      return 0;
    }
    if (context.args.Flag("help") || context.args.positional.empty()) {
      PrintUsage(context.args.Flag("help") ? std::cout : std::cerr);
      return context.args.Flag("help") ? 0 : 2;
    }
    auto& words = context.args.positional;
    for (const auto& command : kCommands) {
      std::string_view w = command.words;
      size_t count = w.find(' ') == std::string_view::npos ? 1 : 2;
      std::string joined = words[0] + (count == 2 && words.size() > 1 ? " " + words[1] : "");
      if (joined != w) continue;
      words.erase(words.begin(), words.begin() + static_cast<long>(count));
      if (auto db = context.args.Option("db")) {
        context.conninfo = *db;
      } else if (const char* env = std::getenv("MUSIC_API_DB"); env && *env) {
        context.conninfo = env;
      }
      auto config = context.args.Option("config");
      context.config_explicit = config.has_value();
      context.config_path = config.value_or(std::string(music_api::kDefaultConfigPath));
      return command.run(context);
    }
    std::cerr << "music-admin: unknown command '" << words[0] << (words.size() > 1 ? " " + words[1] : "") << "'\n";
    PrintUsage(std::cerr);
    return 2;
  } catch (const UsageError& e) {
    std::cerr << "music-admin: " << e.what() << "\n";
    return 1;
  } catch (const soci::soci_error& e) {
    std::string message = e.what();
    if (auto newline = message.find('\n'); newline != std::string::npos) message.resize(newline);
    std::cerr << "music-admin: database error: " << message << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "music-admin: " << e.what() << "\n";
    return 1;
  }
}
