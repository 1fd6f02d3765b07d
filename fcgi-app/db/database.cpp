// One worker's PostgreSQL session: statements prepared once, reconnect and one retry on failure.
#include "db/database.hpp"

#include <libpq-fe.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "core/config.hpp"
#include "core/log.hpp"
#include "db/statements.hpp"

namespace music_api {
namespace {

enum class FailureKind { kUnavailable, kInternal };

// SOCI appends the whole statement and its bound values to its messages; logs keep the reason.
std::string Reason(const std::exception& e) {
  std::string_view what = e.what();
  return std::string(what.substr(0, std::min(what.find(" while "), size_t{300})));
}

// The one table from PostgreSQL failure to HTTP: connection trouble, server shutdown, overload
// and cancelled (timed-out) statements are 503; anything else is a bug or a schema problem: 500.
FailureKind Classify(std::string_view sqlstate, bool session_broken) {
  if (session_broken) return FailureKind::kUnavailable;
  if (sqlstate.starts_with("08")) return FailureKind::kUnavailable;                  // connection exception
  if (sqlstate.starts_with("57")) return FailureKind::kUnavailable;                  // 57014 timeout, 57P0x shutdown
  if (sqlstate == "53300" || sqlstate == "53000") return FailureKind::kUnavailable;  // too many connections
  return FailureKind::kInternal;
}

// Failures after which the session itself cannot be trusted: the connection is gone or the server
// is shutting it down (57P0x). Anything else (a cancelled statement, 57014; a constraint; a bug)
// leaves a usable session: it is kept, with its LISTEN, and only its statements are prepared again.
bool DropsSession(std::string_view sqlstate, bool session_broken) {
  return session_broken || sqlstate.starts_with("08") || sqlstate.starts_with("57P");
}

std::string WithConnectTimeout(std::string_view conninfo) {
  // Without connect_timeout libpq waits for TCP as long as the kernel does; a worker must not, and
  // the request budget (Config::RequestAlarmSeconds) counts on this value. In a key=value string
  // the last occurrence of a keyword wins, so ours is appended whatever the string says.
  std::string result(conninfo);
  bool is_uri = conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://");
  if (!is_uri) result += " connect_timeout=" + std::to_string(kConnectTimeoutSeconds);
  return result;
}

}  // namespace

struct Database::Statements {
  // Bound inputs: the statements hold references to these, so they live here, next to them.
  std::string key_id, presented_hash, org_id, user_id, collection_id, mode, engine;
  long long now = 0;
  int limit = 0;
  long long offset = 0;

  std::string secret_hash, key_user_id;
  int revoked = 0, member = 0, can_generate = 0;
  long long expires_at = 0;
  soci::indicator expires_indicator = soci::i_null;
  // The listing's columns: the page's own vectors, plus what only the database layer needs
  // (the statement's verdicts and SOCI's null indicators, turned into plain flags after a fetch).
  TrackPage page;
  std::vector<int> auth_ok, collection_ok;
  std::vector<soci::indicator> id_indicator, title_indicator, duration_indicator;

  void Resize(size_t n) {
    page.Resize(n);
    auth_ok.resize(n), collection_ok.resize(n);
    id_indicator.resize(n), title_indicator.resize(n), duration_indicator.resize(n);
  }

  // Each statement is prepared on its first use in a session, so a session costs only the
  // round trips its requests need, and a failed statement is the only one prepared again.
  explicit Statements(soci::session& session) : session_(session) { Resize(kMaxLimit); }

  soci::statement& FindKey() {
    running_ = &find_key_;
    if (!find_key_) {
      find_key_ = std::make_unique<soci::statement>(
          (session_.prepare << sql::kFindKey, soci::use(org_id, "org"), soci::use(key_id, "key"),
           soci::into(secret_hash), soci::into(key_user_id), soci::into(revoked),
           soci::into(expires_at, expires_indicator), soci::into(member), soci::into(can_generate)));
    }
    return *find_key_;
  }

  soci::statement& ListTracks(sql::ListingFilters filters) {
    std::unique_ptr<soci::statement>& slot = listing_[filters.Index()];
    running_ = &slot;
    if (!slot) slot = PrepareListing(filters);
    return *slot;
  }

  // The statement that just failed goes; the others stay prepared.
  void DropRunning() {
    if (running_ != nullptr) running_->reset();
    running_ = nullptr;
  }

 private:
  std::unique_ptr<soci::statement> PrepareListing(sql::ListingFilters filters) {
    Resize(kMaxLimit);
    soci::statement st(session_);
    st.alloc();
    st.exchange(soci::use(key_id, "key"));
    st.exchange(soci::use(presented_hash, "hash"));
    st.exchange(soci::use(now, "now"));
    st.exchange(soci::use(user_id, "user"));
    st.exchange(soci::use(org_id, "org"));
    if (filters.mode) st.exchange(soci::use(mode, "mode"));
    if (filters.engine) st.exchange(soci::use(engine, "engine"));
    if (filters.collection) st.exchange(soci::use(collection_id, "collection"));
    st.exchange(soci::use(limit, "limit"));
    st.exchange(soci::use(offset, "offset"));
    st.exchange(soci::into(auth_ok));
    st.exchange(soci::into(collection_ok));
    st.exchange(soci::into(page.id, id_indicator));
    st.exchange(soci::into(page.title, title_indicator));
    st.exchange(soci::into(page.engine));
    st.exchange(soci::into(page.mode));
    st.exchange(soci::into(page.duration, duration_indicator));
    st.exchange(soci::into(page.instrumental));
    st.exchange(soci::into(page.licence_class));
    st.exchange(soci::into(page.created_at));
    st.prepare(sql::ListingQuery(filters));
    st.define_and_bind();
    return std::make_unique<soci::statement>(std::move(st));
  }

  soci::session& session_;
  std::unique_ptr<soci::statement> find_key_;
  std::array<std::unique_ptr<soci::statement>, sql::kListingVariants> listing_;
  std::unique_ptr<soci::statement>* running_ = nullptr;
};

Database::Database(std::string conninfo, int statement_timeout_ms)
    : conninfo_(WithConnectTimeout(conninfo)), statement_timeout_(std::to_string(statement_timeout_ms)) {}

Database::~Database() { CloseSession(); }

void Database::OpenSession() {
  auto session = std::make_unique<soci::session>(soci::postgresql, conninfo_);
  std::string timeout_setting, name_setting, plan_setting;
  *session << sql::kSessionSetup, soci::use(statement_timeout_, "timeout"), soci::into(timeout_setting),
      soci::into(name_setting), soci::into(plan_setting);
  *session << sql::kListenAuthChanges;
  session_ = std::move(session);
  statements_ = std::make_unique<Statements>(*session_);
  auth_changed_ = true;  // notifications sent while there was no session are lost
  // One line per session opened: reconnects are visible in the journal (and tested).
  Log("info", "db_connected", {{"pid", std::to_string(getpid())}});
}

void Database::CloseSession() {
  statements_.reset();
  session_.reset();
}

bool Database::AuthChanged() {
  if (session_) {
    PGconn* conn = static_cast<soci::postgresql_session_backend*>(session_->get_backend())->conn_;
    if (conn && PQconsumeInput(conn) == 1) {
      while (PGnotify* notify = PQnotifies(conn)) {
        if (std::string_view(notify->relname) == sql::kAuthChannel) auth_changed_ = true;
        PQfreemem(notify);
      }
    }
  }
  bool changed = auth_changed_;
  auth_changed_ = false;
  return changed;
}

bool Database::SessionBroken() const {
  if (!session_) return true;
  auto* backend = static_cast<soci::postgresql_session_backend*>(session_->get_backend());
  return backend == nullptr || backend->conn_ == nullptr || PQstatus(backend->conn_) != CONNECTION_OK;
}

bool Database::Connect(std::string_view trace_id) {
  if (session_ && !SessionBroken()) return true;
  try {
    CloseSession();
    OpenSession();
    return true;
  } catch (const std::exception& e) {
    CloseSession();
    ++failures_;
    Log("error", "db_connect_failed", {{"trace_id", trace_id}, {"error", Reason(e)}});
    return false;
  }
}

void Database::DropFailed(std::string_view sqlstate) {
  // A SOCI statement that threw (in its prepare or mid-execute) must not be reused: it loses its
  // bound parameter buffers, and nothing half-fetched can ever be rendered. The session goes only
  // when it is unusable: a statement timeout under load (a prepare too takes the tables' locks,
  // so it can time out behind one) must not turn into a reconnect, a LISTEN and every prepare,
  // just when the server is struggling.
  if (DropsSession(sqlstate, SessionBroken())) {
    CloseSession();
  } else {
    statements_->DropRunning();
  }
}

template <typename Body>
auto Database::Run(std::string_view what, std::string_view trace_id, Body&& body) -> Result<decltype(body())> {
  // Every statement here is a read, so one retry on a fresh session is safe.
  for (int attempt = 0;; ++attempt) {
    if (std::chrono::steady_clock::now() >= deadline_) {
      Log("error", "db_budget_spent", {{"trace_id", trace_id}, {"query", what}});
      return Fail(ErrorCode::kServiceUnavailable);
    }
    if (!Connect(trace_id)) return Fail(ErrorCode::kServiceUnavailable);
    std::string sqlstate;
    try {
      return body();
    } catch (const soci::postgresql_soci_error& e) {
      sqlstate = e.sqlstate();
      Log("error", "db_error", {{"trace_id", trace_id}, {"query", what}, {"sqlstate", sqlstate}, {"error", Reason(e)}});
    } catch (const std::exception& e) {
      Log("error", "db_error", {{"trace_id", trace_id}, {"query", what}, {"error", Reason(e)}});
    }
    ++failures_;
    bool broken = SessionBroken();
    DropFailed(sqlstate);
    if (Classify(sqlstate, broken) == FailureKind::kInternal) return Fail(ErrorCode::kInternalError);
    if (!broken || attempt >= 1) return Fail(ErrorCode::kServiceUnavailable);
  }
}

Result<bool> Database::Ping(std::string_view trace_id) {
  return Run("ping", trace_id, [&]() -> bool {
    int one = 0;
    *session_ << sql::kPing, soci::into(one);
    return one == 1;
  });
}

Result<std::optional<KeyRecord>> Database::FindKey(std::string_view key_id, std::string_view org_id,
                                                   std::string_view trace_id) {
  return Run("find_key", trace_id, [&]() -> std::optional<KeyRecord> {
    Statements& s = *statements_;
    s.key_id = key_id;
    s.org_id = org_id;
    if (!s.FindKey().execute(true)) return std::nullopt;
    std::optional<int64_t> expires;
    if (s.expires_indicator == soci::i_ok) expires = s.expires_at;
    return KeyRecord{s.secret_hash, s.key_user_id, s.revoked != 0, expires, s.member != 0, s.can_generate != 0};
  });
}

Result<Listing> Database::ListTracks(const ListingCaller& caller, const ListParams& params, std::string_view trace_id) {
  return Run("list_tracks", trace_id, [&]() -> Listing {
    Statements& s = *statements_;
    s.key_id = caller.key_id;
    s.presented_hash = caller.secret_hash;
    s.now = caller.now;
    s.org_id = caller.org_id;
    s.user_id = caller.user_id;
    s.mode = params.mode.value_or("");
    s.engine = params.engine.value_or("");
    s.collection_id = params.collection_id.value_or("");
    s.limit = params.limit;
    s.offset = params.offset;
    sql::ListingFilters filters{params.mode.has_value(), params.engine.has_value(), params.collection_id.has_value()};
    // SOCI shrinks bound vectors to the rows fetched; grow them back to the largest page first.
    s.Resize(kMaxLimit);
    if (!s.ListTracks(filters).execute(true) || s.page.size() == 0) {
      throw std::runtime_error("the listing statement returned no row");  // it always returns one
    }
    Listing listing{s.auth_ok[0] != 0, s.collection_ok[0] != 0, &s.page};
    // One row with a NULL id is the empty page.
    if (s.id_indicator[0] == soci::i_null) {
      s.page.Resize(0);
      return listing;
    }
    s.page.title_null.resize(s.page.size());
    s.page.duration_null.resize(s.page.size());
    for (size_t i = 0; i < s.page.size(); ++i) {
      s.page.title_null[i] = s.title_indicator[i] == soci::i_null;
      s.page.duration_null[i] = s.duration_indicator[i] == soci::i_null;
    }
    return listing;
  });
}

}  // namespace music_api
