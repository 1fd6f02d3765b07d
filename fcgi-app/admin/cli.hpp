// music-admin's parsed command line and the context every subcommand runs with.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace soci {
class session;
}

namespace music_api::admin {

// A failure the user caused or can fix: printed as `music-admin: MESSAGE`, exit status 1.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct Args {
  std::vector<std::string> positional;                      // after the command words
  std::map<std::string, std::vector<std::string>> options;  // --name value (repeatable)

  std::optional<std::string> Option(const std::string& name) const;
  bool Flag(const std::string& name) const { return options.contains(name); }
  const std::string& At(size_t index, const char* what) const;
  void ExpectPositional(size_t count, const char* usage) const;
};

struct Context {
  Args args;
  std::string conninfo;
  std::string config_path;
  bool config_explicit = false;

  soci::session& Session();  // connects on first use
  std::string Pepper() const;
  ~Context();

 private:
  std::unique_ptr<soci::session> session_;
};

// RFC 3339 date-time (any offset, optional fraction); throws UsageError naming `option` otherwise.
std::string RequireRfc3339(const std::string& value, const std::string& option);

int Migrate(Context& context);
int OrgCreate(Context& context);
int UserCreate(Context& context);
int MemberAdd(Context& context);
int MemberRemove(Context& context);
int KeyCreate(Context& context);
int KeyRevoke(Context& context);
int TrackCreate(Context& context);
int TrackAudio(Context& context);
int MediaKeyRotate(Context& context);
// Stores SOURCE as the track's file NAME ("master" or a stem) under the media root and records it.
void ImportAudio(Context& context, const std::string& track, const std::string& name, const std::string& source);
int LibrarySave(Context& context);
int LibraryUnsave(Context& context);
int CollectionCreate(Context& context);
int CollectionAdd(Context& context);
int ShareRevoke(Context& context);
int Seed(Context& context);
int Check(Context& context);
int Explain(Context& context);

}  // namespace music_api::admin
