// music-admin's record commands: each validates its input, runs bound statements, prints the new id.
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iostream>
#include <regex>

#include "admin/cli.hpp"
#include "core/secrets.hpp"
#include "core/text.hpp"
#include "db/admin_statements.hpp"
#include "db/migrations.hpp"

namespace music_api::admin {
namespace sa = sql::admin;
namespace {

constexpr const char* kLicenceClasses[] = {"commercial_cleared", "commercial_enterprise", "personal_only", "unclear"};

void RequireId(const std::string& value, const char* prefix, const char* what) {
  if (!IsResourceId(value, prefix)) throw UsageError(std::string("not a ") + what + " id: '" + value + "'");
}

void RequireExists(soci::session& session, std::string_view query, const std::string& id, const char* what) {
  long long count = 0;
  session << query, soci::use(id, "id"), soci::into(count);
  if (count == 0) throw UsageError(std::string("no such ") + what + ": " + id);
}

std::string RequireFilterText(const std::optional<std::string>& value, const char* option) {
  if (!value || value->empty()) throw UsageError(std::string("--") + option + " is required");
  if (value->size() > 64 || !IsValidUtf8(*value) || HasControlCharacter(*value)) {
    throw UsageError(std::string("--") + option + " must be 1 to 64 bytes of UTF-8 without control characters");
  }
  return *value;
}

std::string RequireTrackOrganization(soci::session& session, const std::string& track) {
  std::string org;
  soci::indicator ind = soci::i_null;
  session << sa::kTrackOrganization, soci::use(track, "id"), soci::into(org, ind);
  if (!session.got_data() || ind == soci::i_null) throw UsageError("no such track: " + track);
  return org;
}

}  // namespace

std::string RequireRfc3339(const std::string& value, const std::string& option) {
  static const std::regex kRfc3339(R"(^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$)");
  if (!std::regex_match(value, kRfc3339)) {
    throw UsageError("--" + option + " must be an RFC 3339 date-time such as 2026-06-28T10:30:00Z, got '" + value +
                     "'");
  }
  return value;
}

int Migrate(Context& context) {
  context.args.ExpectPositional(0, "migrate");
  auto* backend = static_cast<soci::postgresql_session_backend*>(context.Session().get_backend());
  for (const auto& name : ApplyMigrations(backend->conn_)) std::cerr << "applied " << name << "\n";
  return 0;
}

int OrgCreate(Context& context) {
  context.args.ExpectPositional(1, "org create NAME");
  std::string name = context.args.At(0, "NAME"), id = NewResourceId("org_");
  if (name.empty() || name.size() > 200 || !IsValidUtf8(name)) throw UsageError("NAME must be 1 to 200 bytes of UTF-8");
  context.Session() << sa::kInsertOrganization, soci::use(id, "id"), soci::use(name, "name");
  std::cout << id << "\n";
  return 0;
}

int UserCreate(Context& context) {
  context.args.ExpectPositional(1, "user create EMAIL");
  std::string email = context.args.At(0, "EMAIL"), id = NewResourceId("usr_");
  static const std::regex kEmail(R"(^[^@\s]+@[^@\s]+$)");
  if (!std::regex_match(email, kEmail) || email.size() > 320) throw UsageError("not an email address: '" + email + "'");
  try {
    context.Session() << sa::kInsertUser, soci::use(id, "id"), soci::use(email, "email");
  } catch (const soci::postgresql_soci_error& e) {
    if (e.sqlstate() == "23505") throw UsageError("a user with email " + email + " exists");
    throw;
  }
  std::cout << id << "\n";
  return 0;
}

int MemberAdd(Context& context) {
  context.args.ExpectPositional(2, "member add ORG USER [--capability CAP]...");
  std::string org = context.args.At(0, "ORG"), user = context.args.At(1, "USER"), caps;
  static const std::regex kCapability("^[A-Z][A-Z0-9_]{0,63}$");
  auto it = context.args.options.find("capability");
  for (const auto& cap : it == context.args.options.end() ? std::vector<std::string>{} : it->second) {
    if (!std::regex_match(cap, kCapability)) throw UsageError("not a capability name: '" + cap + "'");
    caps += (caps.empty() ? "" : ",") + cap;
  }
  auto& session = context.Session();
  RequireExists(session, sa::kOrganizationExists, org, "organization");
  RequireExists(session, sa::kUserExists, user, "user");
  session << sa::kAddMember, soci::use(user, "user"), soci::use(org, "org"), soci::use(caps, "caps");
  return 0;
}

int MemberRemove(Context& context) {
  context.args.ExpectPositional(2, "member remove ORG USER");
  std::string org = context.args.At(0, "ORG"), user = context.args.At(1, "USER");
  soci::statement st = (context.Session().prepare << sa::kRemoveMember, soci::use(org, "org"), soci::use(user, "user"));
  st.execute(true);
  if (st.get_affected_rows() == 0) throw UsageError(user + " is not a member of " + org);
  return 0;
}

int KeyCreate(Context& context) {
  context.args.ExpectPositional(1, "key create USER [--expires-at RFC3339]");
  std::string user = context.args.At(0, "USER");
  auto expires = context.args.Option("expires-at");
  std::string expires_value = expires ? RequireRfc3339(*expires, "expires-at") : "";
  soci::indicator expires_ind = expires ? soci::i_ok : soci::i_null;
  std::string pepper = context.Pepper();
  auto& session = context.Session();
  RequireExists(session, sa::kUserExists, user, "user");
  ApiKeyParts key = NewApiKey();
  std::string hash = HashApiKeySecret(pepper, key);
  session << sa::kInsertKey, soci::use(key.id, "id"), soci::use(user, "user"), soci::use(hash, "hash"),
      soci::use(expires_value, expires_ind, "expires");
  std::cout << FormatApiKey(key) << "\n";
  return 0;
}

int KeyRevoke(Context& context) {
  context.args.ExpectPositional(1, "key revoke KEY_ID_OR_KEY");
  std::string given = context.args.At(0, "KEY_ID_OR_KEY");
  std::string id;
  if (IsApiKeyId(given)) {
    id = given;
  } else if (auto parsed = ParseApiKey(given)) {
    id = parsed->id;
  } else {
    throw UsageError("not a key or key id (mk_…): '" + given.substr(0, 19) + "'");
  }
  soci::statement st = (context.Session().prepare << sa::kRevokeKey, soci::use(id, "id"));
  st.execute(true);
  if (st.get_affected_rows() == 0) throw UsageError("no such key: " + id);
  return 0;
}

int TrackCreate(Context& context) {
  const char* usage =
      "track create ORG --engine E --mode M [--title T] [--duration SECONDS] [--instrumental] "
      "[--licence-class C] [--created-at RFC3339] [--creator USER] [--audio FILE] [--stem NAME=FILE]...";
  context.args.ExpectPositional(1, usage);
  std::string org = context.args.At(0, "ORG"), id = NewResourceId("mtrack_");
  std::string engine = RequireFilterText(context.args.Option("engine"), "engine");
  std::string mode = RequireFilterText(context.args.Option("mode"), "mode");
  auto title = context.args.Option("title");
  if (title && !IsValidUtf8(*title)) throw UsageError("--title must be UTF-8");
  std::string title_value = title.value_or("");
  soci::indicator title_ind = title ? soci::i_ok : soci::i_null;

  auto duration = context.args.Option("duration");
  std::string duration_value;
  soci::indicator duration_ind = soci::i_null;
  if (duration) {
    double seconds = -1;
    auto [end, ec] = std::from_chars(duration->data(), duration->data() + duration->size(), seconds);
    if (ec != std::errc() || end != duration->data() + duration->size() || !std::isfinite(seconds) || seconds < 0) {
      throw UsageError("--duration must be a non-negative number of seconds, got '" + *duration + "'");
    }
    duration_value = *duration, duration_ind = soci::i_ok;
  }
  std::string licence = context.args.Option("licence-class").value_or("unclear");
  if (std::ranges::find(kLicenceClasses, licence) == std::end(kLicenceClasses)) {
    throw UsageError("--licence-class must be commercial_cleared, commercial_enterprise, personal_only or unclear");
  }
  auto created = context.args.Option("created-at");
  std::string created_value = created ? RequireRfc3339(*created, "created-at") : "";
  soci::indicator created_ind = created ? soci::i_ok : soci::i_null;
  std::string instrumental = context.args.Flag("instrumental") ? "true" : "false";
  auto creator = context.args.Option("creator");
  if (creator) RequireId(*creator, "usr_", "user");
  std::string creator_value = creator.value_or("");
  soci::indicator creator_ind = creator ? soci::i_ok : soci::i_null;
  auto audio = context.args.Option("audio");
  std::vector<std::pair<std::string, std::string>> stems;  // name, file
  if (auto it = context.args.options.find("stem"); it != context.args.options.end()) {
    for (const auto& spec : it->second) {
      size_t eq = spec.find('=');
      if (eq == std::string::npos || eq == 0 || eq + 1 == spec.size()) throw UsageError("--stem takes NAME=FILE");
      stems.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
    }
  }

  auto& session = context.Session();
  RequireExists(session, sa::kOrganizationExists, org, "organization");
  soci::transaction transaction(session);
  soci::statement insert =
      (session.prepare << sa::kInsertTrack, soci::use(id, "id"), soci::use(org, "org"),
       soci::use(title_value, title_ind, "title"), soci::use(engine, "engine"), soci::use(mode, "mode"),
       soci::use(duration_value, duration_ind, "duration"), soci::use(instrumental, "instrumental"),
       soci::use(licence, "licence"), soci::use(created_value, created_ind, "created"),
       soci::use(creator_value, creator_ind, "creator"));
  insert.execute(true);
  if (insert.get_affected_rows() != 1) throw UsageError("user " + creator_value + " is not a member of " + org);
  // The files join the same transaction: a failed import leaves no track without its audio.
  if (audio) ImportAudio(context, id, "master", *audio);
  for (const auto& [name, file] : stems) ImportAudio(context, id, name, file);
  transaction.commit();
  std::cout << id << "\n";
  return 0;
}

int LibrarySave(Context& context) {
  context.args.ExpectPositional(3, "library save ORG USER TRACK [--saved-at RFC3339]");
  std::string org = context.args.At(0, "ORG"), user = context.args.At(1, "USER"), track = context.args.At(2, "TRACK");
  auto saved = context.args.Option("saved-at");
  std::string saved_value = saved ? RequireRfc3339(*saved, "saved-at") : "";
  soci::indicator saved_ind = saved ? soci::i_ok : soci::i_null;
  auto& session = context.Session();
  RequireExists(session, sa::kUserExists, user, "user");
  if (RequireTrackOrganization(session, track) != org) throw UsageError("track " + track + " is not in " + org);
  // An existing save is left as it is, saved_at included.
  session << sa::kSaveTrack, soci::use(user, "user"), soci::use(saved_value, saved_ind, "saved"),
      soci::use(track, "track"), soci::use(org, "org");
  return 0;
}

int LibraryUnsave(Context& context) {
  context.args.ExpectPositional(3, "library unsave ORG USER TRACK");
  std::string org = context.args.At(0, "ORG"), user = context.args.At(1, "USER"), track = context.args.At(2, "TRACK");
  context.Session() << sa::kUnsaveTrack, soci::use(org, "org"), soci::use(user, "user"), soci::use(track, "track");
  return 0;
}

int CollectionCreate(Context& context) {
  context.args.ExpectPositional(3, "collection create ORG USER NAME");
  std::string org = context.args.At(0, "ORG"), user = context.args.At(1, "USER"), name = context.args.At(2, "NAME");
  if (name.empty() || name.size() > 200 || !IsValidUtf8(name)) throw UsageError("NAME must be 1 to 200 bytes of UTF-8");
  std::string id = NewResourceId("mcoll_");
  auto& session = context.Session();
  RequireExists(session, sa::kOrganizationExists, org, "organization");
  RequireExists(session, sa::kUserExists, user, "user");
  session << sa::kInsertCollection, soci::use(id, "id"), soci::use(org, "org"), soci::use(user, "user"),
      soci::use(name, "name");
  std::cout << id << "\n";
  return 0;
}

int CollectionAdd(Context& context) {
  context.args.ExpectPositional(2, "collection add COLLECTION TRACK");
  std::string collection = context.args.At(0, "COLLECTION"), track = context.args.At(1, "TRACK");
  RequireId(collection, "mcoll_", "collection");
  auto& session = context.Session();
  std::string org;
  soci::indicator ind = soci::i_null;
  session << sa::kCollectionOrganization, soci::use(collection, "id"), soci::into(org, ind);
  if (!session.got_data() || ind == soci::i_null) throw UsageError("no such collection: " + collection);
  if (RequireTrackOrganization(session, track) != org) {
    throw UsageError("track " + track + " is not in the collection's organization " + org);
  }
  // The lock first, in its own statement, so the position counts every entry committed before it.
  soci::transaction transaction(session);
  long long locked = 0;
  session << sa::kCollectionLock, soci::use(collection, "collection"), soci::into(locked);
  session << sa::kCollectionAdd, soci::use(track, "track"), soci::use(collection, "collection");
  transaction.commit();
  return 0;
}

int ShareRevoke(Context& context) {
  context.args.ExpectPositional(1, "share revoke SHARE_ID");
  std::string id = context.args.At(0, "SHARE_ID");
  RequireId(id, "mslink_", "share link");
  soci::statement revoke = (context.Session().prepare << sa::kRevokeShare, soci::use(id, "id"));
  revoke.execute(true);
  if (revoke.get_affected_rows() == 0) throw UsageError("no such share link: " + id);
  return 0;
}

}  // namespace music_api::admin
