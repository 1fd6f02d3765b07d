// One worker's PostgreSQL session: statements prepared once, reconnect and one retry on failure.
#include "db/database.hpp"

#include <libpq-fe.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "core/log.hpp"

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

std::string WithConnectTimeout(std::string_view conninfo) {
  // Without connect_timeout libpq waits for TCP as long as the kernel does; a worker must not.
  std::string result(conninfo);
  bool is_uri = conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://");
  if (!is_uri && conninfo.find("connect_timeout") == std::string_view::npos) result += " connect_timeout=3";
  return result;
}

}  // namespace

struct Database::Statements {
  // Bound inputs: the statements hold references to these, so they live here, next to them.
  std::string key_id, org_id, user_id, collection_id, mode, engine;
  int limit = 0;
  long long offset = 0;

  std::string secret_hash, key_user_id;
  int revoked = 0, member = 0, can_generate = 0;
  long long expires_at = 0;
  soci::indicator expires_indicator = soci::i_null;
  TrackPage page;

  std::unique_ptr<soci::statement> find_key;
  std::array<std::unique_ptr<soci::statement>, sql::kListingVariants> listing;

  explicit Statements(soci::session& session) {
    find_key = std::make_unique<soci::statement>(
        (session.prepare << sql::kFindKey, soci::use(org_id, "org"), soci::use(key_id, "key"), soci::into(secret_hash),
         soci::into(key_user_id), soci::into(revoked), soci::into(expires_at, expires_indicator), soci::into(member),
         soci::into(can_generate)));
    page.Resize(kMaxLimit);
    for (int i = 0; i < sql::kListingVariants; ++i) {
      sql::ListingFilters filters{(i & 1) != 0, (i & 2) != 0, (i & 4) != 0};
      soci::statement st(session);
      st.alloc();
      st.exchange(soci::use(key_id, "key"));
      st.exchange(soci::use(user_id, "user"));
      st.exchange(soci::use(org_id, "org"));
      if (filters.mode) st.exchange(soci::use(mode, "mode"));
      if (filters.engine) st.exchange(soci::use(engine, "engine"));
      if (filters.collection) st.exchange(soci::use(collection_id, "collection"));
      st.exchange(soci::use(limit, "limit"));
      st.exchange(soci::use(offset, "offset"));
      st.exchange(soci::into(page.auth_ok));
      st.exchange(soci::into(page.collection_ok));
      st.exchange(soci::into(page.id, page.id_indicator));
      st.exchange(soci::into(page.title, page.title_indicator));
      st.exchange(soci::into(page.engine));
      st.exchange(soci::into(page.mode));
      st.exchange(soci::into(page.duration, page.duration_indicator));
      st.exchange(soci::into(page.instrumental));
      st.exchange(soci::into(page.licence_class));
      st.exchange(soci::into(page.created_at));
      st.prepare(sql::ListingQuery(filters));
      st.define_and_bind();
      listing[i] = std::make_unique<soci::statement>(std::move(st));
    }
  }
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
  // After a reconnect the server has forgotten every prepared statement: prepare them again.
  statements_ = std::make_unique<Statements>(*session);
  session_ = std::move(session);
  auth_changed_ = true;
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
  CloseSession();
  try {
    OpenSession();
    return true;
  } catch (const std::exception& e) {
    CloseSession();
    ++failures_;
    Log("error", "db_connect_failed", {{"trace_id", trace_id}, {"error", Reason(e)}});
    return false;
  }
}

template <typename Body>
auto Database::Run(std::string_view what, std::string_view trace_id, Body&& body) -> Result<decltype(body())> {
  // Every statement here is a read, so one retry on a fresh session is safe.
  for (int attempt = 0;; ++attempt) {
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
    // After any failure the session and its statements are dropped and the next call starts
    // afresh: a SOCI statement that threw mid-execute must not be reused (it loses its bound
    // parameter buffers), and nothing half-fetched can ever be rendered.
    CloseSession();
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
    if (!s.find_key->execute(true)) return std::nullopt;
    std::optional<int64_t> expires;
    if (s.expires_indicator == soci::i_ok) expires = s.expires_at;
    return KeyRecord{s.secret_hash, s.key_user_id, s.revoked != 0, expires, s.member != 0, s.can_generate != 0};
  });
}

Result<Listing> Database::ListTracks(std::string_view key_id, std::string_view org_id, std::string_view user_id,
                                     const ListParams& params, std::string_view trace_id) {
  return Run("list_tracks", trace_id, [&]() -> Listing {
    Statements& s = *statements_;
    s.key_id = key_id;
    s.org_id = org_id;
    s.user_id = user_id;
    s.mode = params.mode.value_or("");
    s.engine = params.engine.value_or("");
    s.collection_id = params.collection_id.value_or("");
    s.limit = params.limit;
    s.offset = params.offset;
    sql::ListingFilters filters{params.mode.has_value(), params.engine.has_value(), params.collection_id.has_value()};
    // SOCI shrinks bound vectors to the rows fetched; grow them back to the largest page first.
    s.page.Resize(kMaxLimit);
    if (!s.listing[filters.Index()]->execute(true) || s.page.size() == 0) {
      throw std::runtime_error("the listing statement returned no row");  // it always returns one
    }
    Listing listing{s.page.auth_ok[0] != 0, s.page.collection_ok[0] != 0, &s.page};
    // One row with a NULL id is the empty page.
    if (s.page.id_indicator[0] == soci::i_null) s.page.Resize(0);
    return listing;
  });
}

}  // namespace music_api
