// music-admin seed: bulk benchmark data in a handful of set-based statements.
#include <soci/soci.h>
#include <sys/stat.h>

#include <charconv>
#include <fstream>
#include <iostream>

#include "admin/cli.hpp"
#include "core/secrets.hpp"
#include "db/admin_statements.hpp"

namespace music_api::admin {
namespace {

int RequireCount(const Args& args, const std::string& option, int min, int max) {
  auto value = args.Option(option);
  if (!value) throw UsageError("--" + option + " is required");
  int n = 0;
  auto [end, ec] = std::from_chars(value->data(), value->data() + value->size(), n);
  if (ec != std::errc() || end != value->data() + value->size() || n < min || n > max) {
    throw UsageError("--" + option + " must be a whole number from " + std::to_string(min) + " to " +
                     std::to_string(max));
  }
  return n;
}

}  // namespace

int Seed(Context& context) {
  namespace sa = sql::admin;
  const Args& args = context.args;
  args.ExpectPositional(0, "seed --users N --tracks N --saves-per-user N [--keys-file PATH]");
  int users = RequireCount(args, "users", 1, 100000);
  int tracks = RequireCount(args, "tracks", 1, 10000000);
  int saves = RequireCount(args, "saves-per-user", 0, 10000000);
  if (saves > tracks) throw UsageError("--saves-per-user cannot exceed --tracks (one save per user and track)");
  auto keys_path = args.Option("keys-file");
  std::string pepper = context.Pepper();

  std::string prefix = RandomToken(8, kLowerAlnum);
  std::string org = "org_" + prefix;
  std::string name = "bench " + prefix;
  auto& session = context.Session();
  soci::transaction transaction(session);
  session << sa::kInsertOrganization, soci::use(org, "id"), soci::use(name, "name");
  session << sa::kSeedUsers, soci::use(prefix, "prefix"), soci::use(users, "users");
  session << sa::kSeedMembers, soci::use(prefix, "prefix"), soci::use(org, "org"), soci::use(users, "users");
  session << sa::kSeedTracks, soci::use(prefix, "prefix"), soci::use(org, "org"), soci::use(tracks, "tracks");
  session << sa::kSeedSaves, soci::use(prefix, "prefix"), soci::use(org, "org"), soci::use(users, "users"),
      soci::use(saves, "saves"), soci::use(tracks, "tracks");
  if (saves > 0) {
    session << sa::kSeedCollections, soci::use(prefix, "prefix"), soci::use(org, "org"), soci::use(users, "users");
    session << sa::kSeedCollectionTracks, soci::use(prefix, "prefix"), soci::use(users, "users"),
        soci::use(tracks, "tracks"), soci::use(org, "org"), soci::use(saves, "saves");
  }

  std::ofstream keys_file;
  if (keys_path) {
    // Plaintext keys: created owner-only (0600), never briefly readable by anyone else.
    mode_t old_umask = umask(077);
    keys_file.open(*keys_path, std::ios::trunc);
    umask(old_umask);
    if (keys_file) chmod(keys_path->c_str(), 0600);  // an existing file keeps its mode on open
    if (!keys_file) throw UsageError("cannot write " + *keys_path);
    keys_file << "# organization\tuser\tkey\tcollection\n";
  }
  soci::indicator no_expiry = soci::i_null;
  std::string expires;
  for (int n = 1; n <= users; ++n) {
    std::string user = "usr_" + prefix + "u" + std::to_string(n);
    ApiKeyParts key = NewApiKey();
    std::string hash = HashApiKeySecret(pepper, key);
    session << sa::kInsertKey, soci::use(key.id, "id"), soci::use(user, "user"), soci::use(hash, "hash"),
        soci::use(expires, no_expiry, "expires");
    if (keys_path) {
      std::string collection = saves > 0 ? "mcoll_" + prefix + "c" + std::to_string(n) : "";
      keys_file << org << '\t' << user << '\t' << FormatApiKey(key) << '\t' << collection << '\n';
    }
  }
  transaction.commit();
  session << sa::kAnalyze;
  std::cout << org << "\n";
  return 0;
}

}  // namespace music_api::admin
