// One worker's PostgreSQL sessions. Reads go to the read string's first answering host (a replica
// when there is one); a replica found too far behind sends that read to the primary instead. Each
// statement is prepared on first use; a dead or frozen host means the next host and one retry.
#include "db/database.hpp"

#include <libpq-fe.h>
#include <signal.h>
#include <soci/postgresql/soci-postgresql.h>
#include <soci/soci.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <utility>

#include "core/config.hpp"
#include "core/log.hpp"
#include "db/statements.hpp"

namespace music_api {
namespace {

enum class FailureKind { kUnavailable, kConflict, kInternal };

// SOCI appends the whole statement and its bound values to its messages; logs keep the reason.
std::string Reason(const std::exception& e) {
  std::string_view what = e.what();
  return std::string(what.substr(0, std::min(what.find(" while "), size_t{300})));
}

// The one table from PostgreSQL failure to HTTP: connection trouble, server shutdown, overload,
// cancelled (timed-out) statements and lost lock races are 503; a unique violation (a concurrent
// write got there first; this one changed nothing) is 409; anything else is a bug or a schema
// problem: 500.
FailureKind Classify(std::string_view sqlstate, bool session_broken) {
  if (session_broken) return FailureKind::kUnavailable;
  if (sqlstate.starts_with("08")) return FailureKind::kUnavailable;                  // connection exception
  if (sqlstate.starts_with("57")) return FailureKind::kUnavailable;                  // 57014 timeout, 57P0x shutdown
  if (sqlstate == "53300" || sqlstate == "53000") return FailureKind::kUnavailable;  // too many connections
  // A deadlock or serialization failure between two edits: one of them is cancelled and may simply
  // be sent again (503 with Retry-After), not a bug. 25006: a read-only transaction, i.e. the
  // server turned out to be a standby (a failover under way): nothing was written.
  if (sqlstate == "40P01" || sqlstate == "40001" || sqlstate == "25006") return FailureKind::kUnavailable;
  if (sqlstate == "23505") return FailureKind::kConflict;
  return FailureKind::kInternal;
}

ErrorCode ErrorFor(FailureKind kind) {
  switch (kind) {
    case FailureKind::kUnavailable:
      return ErrorCode::kServiceUnavailable;
    case FailureKind::kConflict:
      return ErrorCode::kConflict;
    case FailureKind::kInternal:
      break;
  }
  return ErrorCode::kInternalError;
}

// Failures after which the session itself cannot be trusted: the connection is gone or the server
// is shutting it down (57P0x). Anything else (a cancelled statement, 57014; a constraint; a bug)
// leaves a usable session: it is kept, with its LISTEN, and only its statements are prepared again.
bool DropsSession(std::string_view sqlstate, bool session_broken) {
  // 25006: a write reached a server that is now a standby; the next session finds the primary.
  return session_broken || sqlstate.starts_with("08") || sqlstate.starts_with("57P") || sqlstate == "25006";
}

// A host whose server is stopped or hung keeps ACKing TCP at the kernel: no keepalive or
// tcp_user_timeout fires, and its statement_timeout cannot, so a statement there would wait
// forever. A one-shot timer shuts the connection's socket down once a statement has had no answer
// for statement_timeout + 1 s (a live server cancels it before that): libpq then sees a closed
// connection like any dead host's, and Run reconnects to the next host and retries once.
volatile sig_atomic_t g_guarded_socket = -1;

void OnStatementOverdue(int) {
  const int saved_errno = errno;  // the interrupted call's
  int fd = g_guarded_socket;
  if (fd >= 0) shutdown(fd, SHUT_RDWR);  // async-signal-safe
  errno = saved_errno;
}

}  // namespace

class OverdueGuard {
 public:
  OverdueGuard() {
    struct sigaction action {};
    action.sa_handler = OnStatementOverdue;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESTART;
    sigaction(SIGUSR2, &action, nullptr);
    sigevent event{};
    event.sigev_notify = SIGEV_SIGNAL;
    event.sigev_signo = SIGUSR2;
    armed_ok_ = timer_create(CLOCK_MONOTONIC, &event, &timer_) == 0;
  }
  ~OverdueGuard() {
    if (armed_ok_) timer_delete(timer_);
  }
  OverdueGuard(const OverdueGuard&) = delete;
  OverdueGuard& operator=(const OverdueGuard&) = delete;

  void Arm(int socket, std::chrono::milliseconds after) {
    if (!armed_ok_ || socket < 0) return;
    g_guarded_socket = socket;
    itimerspec when{};
    when.it_value.tv_sec = static_cast<time_t>(after.count() / 1000);
    when.it_value.tv_nsec = static_cast<long>((after.count() % 1000) * 1000000);
    timer_settime(timer_, 0, &when, nullptr);
  }
  void Disarm() {
    g_guarded_socket = -1;  // first: a signal already on its way then shuts nothing
    if (!armed_ok_) return;
    itimerspec never{};
    timer_settime(timer_, 0, &never, nullptr);
  }

 private:
  timer_t timer_{};
  bool armed_ok_ = false;
};

struct Database::Statements {
  // Bound inputs: the statements hold references to these, so they live here, next to them.
  std::string key_id, presented_hash, org_id, user_id, collection_id, mode, engine, track_id;
  long long now = 0;
  int lag = 0;
  int limit = 0;
  long long offset = 0;

  int fresh = 0;  // the last statement's verdict on its server (MUSIC_API_SQL_FRESH)
  std::string secret_hash, key_user_id;
  soci::indicator hash_indicator = soci::i_null, user_indicator = soci::i_null;
  int revoked = 0, member = 0, can_generate = 0;
  long long expires_at = 0;
  soci::indicator expires_indicator = soci::i_null;
  // The listing's columns: the page's own vectors, plus what only the database layer needs
  // (the statement's verdicts and SOCI's null indicators, turned into plain flags after a fetch).
  TrackPage page;
  std::vector<int> fresh_rows, auth_ok, collection_ok;
  std::vector<soci::indicator> id_indicator, title_indicator, duration_indicator;

  void Resize(size_t n) {
    page.Resize(n);
    fresh_rows.resize(n), auth_ok.resize(n), collection_ok.resize(n);
    id_indicator.resize(n), title_indicator.resize(n), duration_indicator.resize(n);
  }
  // The listing fetches one row more than the largest page: it tells whether a next page exists.
  static constexpr size_t kListingRows = kMaxLimit + 1;

  // One track: the page's columns again, one row per stored file, plus the file columns.
  TrackPage track;
  std::vector<int> track_fresh, track_auth_ok;
  std::vector<soci::indicator> track_id_indicator, track_title_indicator, track_duration_indicator;
  std::vector<std::string> file_name, file_file_name;
  std::vector<soci::indicator> file_indicator, file_file_indicator;
  void ResizeTrack(size_t n) {
    track.Resize(n);
    track_fresh.resize(n), track_auth_ok.resize(n);
    track_id_indicator.resize(n), track_title_indicator.resize(n), track_duration_indicator.resize(n);
    file_name.resize(n), file_file_name.resize(n), file_indicator.resize(n), file_file_indicator.resize(n);
  }
  static constexpr size_t kTrackRows = sql::kMaxMediaRows + 1;

  // The writes' answers.
  int write_auth_ok = 0, visible = 0, creator = 0;
  long long affected = 0;
  std::string entry_id, entry_source;
  long long entry_created_at = 0;
  soci::indicator entry_indicator = soci::i_null, source_indicator = soci::i_null, entry_time_indicator = soci::i_null;

  void SetCaller(const CheckedCaller& caller, std::string_view track) {
    key_id = caller.key_id;
    presented_hash = caller.secret_hash;
    now = caller.now;
    org_id = caller.org_id;
    user_id = caller.user_id;
    track_id = track;
  }

  // Each statement is prepared on its first use in a session, so a session costs only the
  // round trips its requests need, and a failed statement is the only one prepared again.
  explicit Statements(soci::session& session) : session_(session) { Resize(kListingRows); }

  // A prepare is a round trip of its own (and may wait behind a lock): the statement's own wait
  // for an answer starts after it, not with it.
  std::function<void()> after_prepare;

  soci::statement& FindKey() {
    return Use(find_key_, [&] {
      return std::make_unique<soci::statement>(
          (session_.prepare << sql::kFindKey, soci::use(lag, "lag"), soci::use(key_id, "key"), soci::use(org_id, "org"),
           soci::into(fresh), soci::into(secret_hash, hash_indicator), soci::into(key_user_id, user_indicator),
           soci::into(revoked), soci::into(expires_at, expires_indicator), soci::into(member),
           soci::into(can_generate)));
    });
  }

  soci::statement& ListTracks(sql::ListingFilters filters) {
    return Use(listing_[filters.Index()], [&] { return PrepareListing(filters); });
  }

  soci::statement& GetTrack() {
    return Use(get_track_, [&] {
      ResizeTrack(kTrackRows);
      soci::statement st(session_);
      st.alloc();
      BindCaller(st);
      st.exchange(soci::use(lag, "lag"));
      st.exchange(soci::use(track_id, "track"));
      st.exchange(soci::into(track_fresh));
      st.exchange(soci::into(track_auth_ok));
      st.exchange(soci::into(track.id, track_id_indicator));
      st.exchange(soci::into(track.title, track_title_indicator));
      st.exchange(soci::into(track.engine));
      st.exchange(soci::into(track.mode));
      st.exchange(soci::into(track.duration, track_duration_indicator));
      st.exchange(soci::into(track.instrumental));
      st.exchange(soci::into(track.licence_class));
      st.exchange(soci::into(track.created_at));
      st.exchange(soci::into(file_name, file_indicator));
      st.exchange(soci::into(file_file_name, file_file_indicator));
      st.prepare(std::string(sql::kGetTrack));
      st.define_and_bind();
      return std::make_unique<soci::statement>(std::move(st));
    });
  }

  soci::statement& SaveTrack() {
    return Use(save_track_, [&] {
      return std::make_unique<soci::statement>(
          (session_.prepare << sql::kSaveTrack, soci::use(key_id, "key"), soci::use(presented_hash, "hash"),
           soci::use(user_id, "user"), soci::use(org_id, "org"), soci::use(now, "now"), soci::use(track_id, "track"),
           soci::into(write_auth_ok), soci::into(visible), soci::into(entry_id, entry_indicator),
           soci::into(entry_source, source_indicator), soci::into(entry_created_at, entry_time_indicator)));
    });
  }

  soci::statement& UnsaveTrack() {
    return Use(unsave_track_, [&] {
      return std::make_unique<soci::statement>(
          (session_.prepare << sql::kUnsaveTrack, soci::use(key_id, "key"), soci::use(presented_hash, "hash"),
           soci::use(user_id, "user"), soci::use(org_id, "org"), soci::use(now, "now"), soci::use(track_id, "track"),
           soci::into(write_auth_ok), soci::into(affected)));
    });
  }

  soci::statement& DeleteTrack() {
    return Use(delete_track_, [&] {
      return std::make_unique<soci::statement>(
          (session_.prepare << sql::kDeleteTrack, soci::use(key_id, "key"), soci::use(presented_hash, "hash"),
           soci::use(user_id, "user"), soci::use(org_id, "org"), soci::use(now, "now"), soci::use(track_id, "track"),
           soci::into(write_auth_ok), soci::into(visible), soci::into(creator), soci::into(affected)));
    });
  }

  soci::session& session() { return session_; }

  // The statement that just failed goes; the others stay prepared.
  void DropRunning() {
    if (running_ != nullptr) running_->reset();
    running_ = nullptr;
  }

 private:
  // The statement that runs is the one a failure drops; a new one costs a prepare round trip.
  template <typename Make>
  soci::statement& Use(std::unique_ptr<soci::statement>& slot, Make&& make) {
    running_ = &slot;
    if (!slot) {
      slot = make();
      if (after_prepare) after_prepare();
    }
    return *slot;
  }

  // What MUSIC_API_SQL_CALLER_OK binds.
  void BindCaller(soci::statement& st) {
    st.exchange(soci::use(key_id, "key"));
    st.exchange(soci::use(presented_hash, "hash"));
    st.exchange(soci::use(now, "now"));
    st.exchange(soci::use(user_id, "user"));
    st.exchange(soci::use(org_id, "org"));
  }

  std::unique_ptr<soci::statement> PrepareListing(sql::ListingFilters filters) {
    Resize(kListingRows);
    soci::statement st(session_);
    st.alloc();
    st.exchange(soci::use(lag, "lag"));
    BindCaller(st);
    if (filters.mode) st.exchange(soci::use(mode, "mode"));
    if (filters.engine) st.exchange(soci::use(engine, "engine"));
    if (filters.collection) st.exchange(soci::use(collection_id, "collection"));
    st.exchange(soci::use(limit, "limit"));
    st.exchange(soci::use(offset, "offset"));
    st.exchange(soci::into(fresh_rows));
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
  std::unique_ptr<soci::statement> get_track_, save_track_, unsave_track_, delete_track_;
  std::unique_ptr<soci::statement>* running_ = nullptr;
};

// One session to one of a connection string's hosts, and where the next attempt starts.
struct Database::Connection {
  Connection(std::string_view role, std::string_view conninfo, const ConnectionOptions& options, bool primary_only)
      : role(role), hosts(conninfo, options, primary_only), next_host(static_cast<int>(getpid()) % hosts.size()) {}

  std::string_view role;  // "read" or "write", for the logs
  HostList hosts;
  // Workers start at different hosts (by pid) to spread reads: libpq 15 has no load_balance_hosts.
  int next_host;
  bool reconnect = false;  // leave this host at the next Open (it lags)
  std::unique_ptr<soci::session> session;
  std::unique_ptr<Statements> statements;

  PGconn* Conn() const {
    if (!session) return nullptr;
    auto* backend = static_cast<soci::postgresql_session_backend*>(session->get_backend());
    return backend ? backend->conn_ : nullptr;
  }
  bool Broken() const {
    PGconn* conn = Conn();
    return conn == nullptr || PQstatus(conn) != CONNECTION_OK;
  }
  std::string Host() const { return Conn() ? std::string(PQhost(Conn())) : std::string(); }
  std::string Port() const { return Conn() ? std::string(PQport(Conn())) : std::string(); }
  // The next connection starts at the host after this one (it failed, or it lags).
  void MoveOn() {
    int at = hosts.IndexOf(Host(), Port());
    if (at >= 0) next_host = at + 1;
  }
  void Close() {
    statements.reset();
    session.reset();
    reconnect = false;
  }
};

Database::Database(const DatabaseSettings& settings)
    : read_(std::make_unique<Connection>("read", settings.read_conninfo, settings.options, false)),
      write_(std::make_unique<Connection>("write", settings.write_conninfo, settings.options, true)),
      statement_timeout_(std::to_string(settings.statement_timeout_ms)),
      max_replica_lag_seconds_(settings.max_replica_lag_seconds),
      max_collections_per_user_(settings.max_collections_per_user),
      max_share_links_per_user_(settings.max_share_links_per_user),
      overdue_(std::make_unique<OverdueGuard>()),
      overdue_after_(settings.statement_timeout_ms + 1000),
      grace_(1 + settings.options.connect_timeout_seconds) {}

Database::~Database() = default;

bool Database::Open(Connection& c, std::string_view trace_id) {
  if (c.session && !c.Broken() && !c.reconnect) return true;
  if (c.reconnect) c.MoveOn();
  c.Close();
  try {
    c.session = std::make_unique<soci::session>(soci::postgresql, c.hosts.StartingAt(c.next_host));
    // A host may freeze right after accepting: the setup round trip is guarded like a statement.
    overdue_->Arm(PQsocket(c.Conn()), overdue_after_);
    std::string timeout_setting, name_setting, plan_setting, commit_setting;
    *c.session << sql::kSessionSetup, soci::use(statement_timeout_, "timeout"), soci::into(timeout_setting),
        soci::into(name_setting), soci::into(plan_setting), soci::into(commit_setting);
    overdue_->Disarm();
  } catch (const std::exception& e) {
    overdue_->Disarm();
    c.Close();
    ++failures_;
    Log("error", "db_connect_failed", {{"trace_id", trace_id}, {"session", c.role}, {"error", Reason(e)}});
    return false;
  }
  c.statements = std::make_unique<Statements>(*c.session);
  c.statements->lag = max_replica_lag_seconds_;
  c.statements->after_prepare = [this, socket = PQsocket(c.Conn())] { overdue_->Arm(socket, overdue_after_); };
  // Stay on this host while it serves; MoveOn() goes past it when it does not.
  if (int at = c.hosts.IndexOf(c.Host(), c.Port()); at >= 0) c.next_host = at;
  if (&c == read_.get()) auth_changed_ = true;  // another server: what was cached came from elsewhere
  const char* standby = PQparameterStatus(c.Conn(), "in_hot_standby");
  // One line per session opened: reconnects are visible in the journal (and tested).
  Log("info", "db_connected",
      {{"pid", std::to_string(getpid())},
       {"session", c.role},
       {"host", c.Host()},
       {"port", c.Port()},
       {"standby", standby ? standby : "unknown"}});
  return true;
}

bool Database::Connect(std::string_view trace_id) { return Open(*read_, trace_id); }

bool Database::AuthChanged() {
  bool changed = auth_changed_;
  auth_changed_ = false;
  return changed;
}

void Database::DropFailed(Connection& c, std::string_view sqlstate) {
  // A SOCI statement that threw (in its prepare or mid-execute) must not be reused: it loses its
  // bound parameter buffers, and nothing half-fetched can ever be rendered. The session goes only
  // when it is unusable: a statement timeout under load (a prepare too takes the tables' locks,
  // so it can time out behind one) must not turn into a reconnect and every prepare, just when
  // the server is struggling.
  if (DropsSession(sqlstate, c.Broken())) {
    c.MoveOn();
    c.Close();
  } else {
    c.statements->DropRunning();
    RollBackOpenTransaction(c);
  }
}

void Database::RollBackOpenTransaction(Connection& c) {
  PGconn* conn = c.Conn();
  if (conn == nullptr || c.Broken() || PQtransactionStatus(conn) == PQTRANS_IDLE) return;
  overdue_->Arm(PQsocket(conn), overdue_after_);
  PGresult* result = PQexec(conn, "ROLLBACK");
  overdue_->Disarm();
  const bool ok = PQresultStatus(result) == PGRES_COMMAND_OK;
  PQclear(result);
  if (!ok) {
    c.MoveOn();
    c.Close();
  }
}

void Database::EndFailedClaim(Connection& c) {
  claim_.reset();
  if (c.statements) c.statements->DropRunning();
  if (c.Broken()) {
    c.MoveOn();
    c.Close();
    return;
  }
  RollBackOpenTransaction(c);
}

void Database::AbandonIdempotent() {
  if (!claim_) return;
  claim_.reset();
  RollBackOpenTransaction(*write_);
}

template <typename Body>
auto Database::Run(std::string_view what, std::string_view trace_id, Body&& body, Target target)
    -> Result<decltype(body(std::declval<Statements&>()))> {
  using Answer = decltype(body(std::declval<Statements&>()));
  Connection* c = target == Target::kWrite ? write_.get() : read_.get();
  // A write inside an Idempotency-Key transaction: it lives on this one session. Any failure ends
  // the transaction (nothing of it is kept) and is never retried elsewhere.
  const bool in_claim = claim_.has_value() && c == write_.get();
  bool retried = false;
  for (;;) {
    const auto limit =
        host_failed_ && deadline_ != std::chrono::steady_clock::time_point::max() ? deadline_ + grace_ : deadline_;
    if (std::chrono::steady_clock::now() >= limit) {
      Log("error", "db_budget_spent", {{"trace_id", trace_id}, {"query", what}});
      if (in_claim) EndFailedClaim(*c);
      return Fail(ErrorCode::kServiceUnavailable);
    }
    if (in_claim && (!c->session || c->Broken())) {
      EndFailedClaim(*c);
      return Fail(ErrorCode::kServiceUnavailable);
    }
    // During a failover every lagging read would otherwise try every host for a primary: after
    // one miss, such reads are refused at once for a second.
    if (c == write_.get() && target == Target::kRead && std::chrono::steady_clock::now() < primary_unreachable_until_) {
      return Fail(ErrorCode::kServiceUnavailable);
    }
    if (!Open(*c, trace_id)) {
      if (c == write_.get()) primary_unreachable_until_ = std::chrono::steady_clock::now() + std::chrono::seconds(1);
      return Fail(ErrorCode::kServiceUnavailable);
    }
    std::string sqlstate;
    const auto sent = std::chrono::steady_clock::now();
    auto timed = [&] {
      statement_ms_.push_back(
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - sent).count());
    };
    try {
      overdue_->Arm(PQsocket(c->Conn()), overdue_after_);
      Answer answer = body(*c->statements);
      overdue_->Disarm();
      timed();
      // Every statement reports whether its server may be believed; the primary's answer is final.
      if (c->statements->fresh != 0 || c == write_.get()) return answer;
      // A replica further behind than max_replica_lag may miss any commit of that time, a key's
      // revocation included: its answer is never served. The primary answers instead, or, when
      // it cannot be reached (a failover, or this host cut off from it), the request gets 503.
      // "The primary does not answer" does not mean "nothing newer was committed".
      Log("warn", "db_replica_stale",
          {{"trace_id", trace_id},
           {"query", what},
           {"host", c->Host()},
           {"port", c->Port()},
           {"max_replica_lag", std::to_string(max_replica_lag_seconds_)}});
      c->reconnect = true;  // the next request starts at the next host
      c = write_.get();
      continue;
    } catch (const soci::postgresql_soci_error& e) {
      sqlstate = e.sqlstate();
      Log("error", "db_error",
          {{"trace_id", trace_id}, {"query", what}, {"host", c->Host()}, {"sqlstate", sqlstate}, {"error", Reason(e)}});
    } catch (const std::exception& e) {
      Log("error", "db_error", {{"trace_id", trace_id}, {"query", what}, {"host", c->Host()}, {"error", Reason(e)}});
    }
    overdue_->Disarm();
    timed();
    ++failures_;
    bool broken = c->Broken();
    if (target == Target::kWrite && broken) write_outcome_unknown_ = true;
    if (in_claim) {
      EndFailedClaim(*c);
      return Fail(ErrorFor(Classify(sqlstate, broken)));
    }
    DropFailed(*c, sqlstate);
    FailureKind kind = Classify(sqlstate, broken);
    if (kind != FailureKind::kUnavailable) return Fail(ErrorFor(kind));
    // One retry on a fresh session (the next host) after a broken one. Reads are safe to repeat;
    // so is every write: a create reuses its id and answers the row its first attempt made, a
    // delete answers its deleter the same 200 again (statements.hpp).
    if (!broken || retried) return Fail(ErrorCode::kServiceUnavailable);
    retried = true;
    host_failed_ = true;
  }
}

Result<bool> Database::Ping(std::string_view trace_id) {
  return Run("ping", trace_id, [&](Statements& s) -> bool {
    int one = 0;
    s.session() << sql::kPing, soci::into(one);
    s.fresh = 1;  // a health check of the session, not a read of data
    return one == 1;
  });
}

Result<std::optional<KeyRecord>> Database::FindKey(std::string_view key_id, std::string_view org_id,
                                                   std::string_view trace_id, bool on_primary) {
  auto find = [&](Statements& s) -> std::optional<KeyRecord> {
    s.key_id = key_id;
    s.org_id = org_id;
    s.fresh = 0;
    if (!s.FindKey().execute(true)) throw std::runtime_error("the key statement returned no row");  // always one
    if (s.hash_indicator != soci::i_ok || s.user_indicator != soci::i_ok) return std::nullopt;
    std::optional<int64_t> expires;
    if (s.expires_indicator == soci::i_ok) expires = s.expires_at;
    return KeyRecord{s.secret_hash, s.key_user_id, s.revoked != 0, expires, s.member != 0, s.can_generate != 0};
  };
  return Run("find_key", trace_id, find, on_primary ? Target::kWrite : Target::kRead);
}

Result<IdempotencyClaim> Database::BeginIdempotent(std::string_view api_key_id, std::string_view key,
                                                   std::string_view fingerprint, std::string_view trace_id) {
  AbandonIdempotent();  // never two at once (a route that failed to finish its own)
  std::string key_id_text(api_key_id), key_text(key);
  auto claim = Run(
      "idempotency_claim", trace_id,
      [&](Statements& s) -> IdempotencyClaim {
        soci::session& db = s.session();
        db.begin();
        int locked = 0;
        db << sql::kIdempotencyLock, soci::use(key_id_text, "key_id"), soci::use(key_text, "key"), soci::into(locked);
        if (locked == 0) {
          db.rollback();
          return IdempotencyClaim{IdempotencyClaim::State::kInUse, true, 0, {}};
        }
        std::string stored_fingerprint, body;
        int status = 0;
        soci::indicator found = soci::i_null;
        db << sql::kIdempotencyFind, soci::use(key_id_text, "key_id"), soci::use(key_text, "key"),
            soci::into(stored_fingerprint, found), soci::into(status), soci::into(body);
        if (found == soci::i_ok) {
          db.rollback();
          return IdempotencyClaim{IdempotencyClaim::State::kReplay, stored_fingerprint == fingerprint, status,
                                  std::move(body)};
        }
        return IdempotencyClaim{};  // kStarted: the transaction stays open, holding the key
      },
      Target::kWrite);
  if (claim && claim->state == IdempotencyClaim::State::kStarted) {
    claim_ = OpenClaim{std::move(key_id_text), std::move(key_text), std::string(fingerprint)};
  }
  return claim;
}

Result<void> Database::FinishIdempotent(int status, std::string_view body, std::string_view trace_id) {
  if (!claim_) return Fail(ErrorCode::kServiceUnavailable);  // a failure already ended it
  std::string status_text = std::to_string(status), body_text(body);
  auto stored = Run(
      "idempotency_store", trace_id,
      [&](Statements& s) -> bool {
        soci::session& db = s.session();
        std::string unused;  // the function's void answer
        soci::indicator unused_indicator = soci::i_null;
        db << sql::kIdempotencyStore, soci::use(claim_->api_key_id, "key_id"), soci::use(claim_->key, "key"),
            soci::use(claim_->fingerprint, "fingerprint"), soci::use(status_text, "status"),
            soci::use(body_text, "body"), soci::into(unused, unused_indicator);
        // With remote_apply, the commit returns once the synchronous replicas applied it too.
        db.commit();
        return true;
      },
      Target::kWrite);
  claim_.reset();
  if (!stored) {
    // Another request stored this key first (it ran between our lock and our store only if the
    // lock's hash collided): ours is rolled back, and a retry gets the stored answer.
    if (stored.error().code == ErrorCode::kConflict) return Fail(ErrorCode::kIdempotencyKeyInUse);
    return Fail(stored.error());
  }
  return {};
}

Result<Listing> Database::ListTracks(const CheckedCaller& caller, const ListParams& params, std::string_view trace_id) {
  return Run("list_tracks", trace_id, [&](Statements& s) -> Listing {
    s.SetCaller(caller, {});
    s.mode = params.mode.value_or("");
    s.engine = params.engine.value_or("");
    s.collection_id = params.collection_id.value_or("");
    s.offset = params.offset;
    sql::ListingFilters filters{params.mode.has_value(), params.engine.has_value(), params.collection_id.has_value()};
    s.limit = params.limit + 1;
    // SOCI shrinks bound vectors to the rows fetched; grow them back to the largest page first.
    s.Resize(Statements::kListingRows);
    if (!s.ListTracks(filters).execute(true) || s.page.size() == 0) {
      throw std::runtime_error("the listing statement returned no row");  // it always returns one
    }
    s.fresh = s.fresh_rows[0];
    Listing listing{s.auth_ok[0] != 0, s.collection_ok[0] != 0, &s.page, false};
    // One row with a NULL id is the empty page.
    if (s.id_indicator[0] == soci::i_null) {
      s.page.Resize(0);
      return listing;
    }
    if (s.page.size() > static_cast<size_t>(params.limit)) {
      listing.has_next = true;  // the one row past the page: dropped from it
      s.page.Resize(static_cast<size_t>(params.limit));
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

Result<TrackDetail> Database::GetTrack(const CheckedCaller& caller, std::string_view track_id,
                                       std::string_view trace_id) {
  return Run("get_track", trace_id, [&](Statements& s) -> TrackDetail {
    s.SetCaller(caller, track_id);
    s.ResizeTrack(Statements::kTrackRows);
    if (!s.GetTrack().execute(true) || s.track.size() == 0) {
      throw std::runtime_error("the track statement returned no row");  // it always returns one
    }
    if (s.track.size() > static_cast<size_t>(sql::kMaxMediaRows)) {
      throw std::runtime_error("the track has more stored files than a track may have");
    }
    s.fresh = s.track_fresh[0];
    TrackDetail detail{s.track_auth_ok[0] != 0, &s.track, {}};
    if (s.track_id_indicator[0] == soci::i_null) {
      s.track.Resize(0);
      return detail;
    }
    for (size_t i = 0; i < s.track.size(); ++i) {
      if (s.file_indicator[i] == soci::i_ok && s.file_file_indicator[i] == soci::i_ok) {
        detail.files.push_back({s.file_name[i], s.file_file_name[i]});
      }
    }
    s.track.title_null.assign(1, s.track_title_indicator[0] == soci::i_null);
    s.track.duration_null.assign(1, s.track_duration_indicator[0] == soci::i_null);
    s.track.Resize(1);
    return detail;
  });
}

Result<SaveOutcome> Database::SaveTrack(const CheckedCaller& caller, std::string_view track_id,
                                        std::string_view trace_id) {
  // A save racing another save of the same track: the later INSERT waits for the earlier one's
  // commit and does nothing, and its snapshot predates that entry; the statement run again sees it.
  for (int attempt = 0;; ++attempt) {
    auto outcome = Run(
        "save_track", trace_id,
        [&](Statements& s) -> SaveOutcome {
          s.SetCaller(caller, track_id);
          s.SaveTrack().execute(true);
          SaveOutcome out{s.write_auth_ok != 0, s.visible != 0, std::nullopt};
          if (s.entry_indicator == soci::i_ok && s.source_indicator == soci::i_ok &&
              s.entry_time_indicator == soci::i_ok) {
            out.entry = LibraryEntry{s.entry_id, s.entry_source, s.entry_created_at};
          }
          return out;
        },
        Target::kWrite);
    if (!outcome || outcome->entry || !outcome->visible || !outcome->auth_ok || attempt == 2) return outcome;
  }
}

Result<UnsaveOutcome> Database::UnsaveTrack(const CheckedCaller& caller, std::string_view track_id,
                                            std::string_view trace_id) {
  return Run(
      "unsave_track", trace_id,
      [&](Statements& s) -> UnsaveOutcome {
        s.SetCaller(caller, track_id);
        s.UnsaveTrack().execute(true);
        return UnsaveOutcome{s.write_auth_ok != 0};
      },
      Target::kWrite);
}

Result<DeleteOutcome> Database::DeleteTrack(const CheckedCaller& caller, std::string_view track_id,
                                            std::string_view trace_id) {
  // A delete that waited for another delete of the same track (e.g. its own first attempt, still
  // committing when its session broke) no longer finds the row, and its snapshot predates that
  // deletion: run once more, a new snapshot sees it (the deleter's 200, anyone else's 404).
  for (int attempt = 0;; ++attempt) {
    auto outcome = Run(
        "delete_track", trace_id,
        [&](Statements& s) -> DeleteOutcome {
          s.SetCaller(caller, track_id);
          s.DeleteTrack().execute(true);
          return DeleteOutcome{s.write_auth_ok != 0, s.visible != 0, s.creator != 0};
        },
        Target::kWrite);
    if (!outcome || outcome->visible || !outcome->auth_ok || attempt == 1) return outcome;
  }
}

namespace {

// A column of a dynamically typed SOCI row as text (the statements cast nothing they need not).
std::optional<std::string> ColumnText(const soci::row& row, size_t i) {
  if (row.get_indicator(i) == soci::i_null) return std::nullopt;
  switch (row.get_properties(i).get_data_type()) {
    case soci::dt_string:
      return row.get<std::string>(i);
    case soci::dt_integer:
      return std::to_string(row.get<int>(i));
    case soci::dt_long_long:
      return std::to_string(row.get<long long>(i));
    case soci::dt_unsigned_long_long:
      return std::to_string(row.get<unsigned long long>(i));
    case soci::dt_double: {
      std::ostringstream out;
      out.precision(17);
      out << row.get<double>(i);
      return out.str();
    }
    default:
      throw std::runtime_error("a statement answered a column of a type it must not");
  }
}

}  // namespace

Result<std::vector<Database::TextRow>> Database::Query(std::string_view what, std::string_view sql,
                                                       const CheckedCaller* caller, const TextParams& params,
                                                       Target target, std::string_view trace_id) {
  return Run(
      what, trace_id,
      [&](Statements& s) -> std::vector<TextRow> {
        // Prepared per call: these routes are edits and small reads, not the hot listing.
        std::vector<std::string> names, values;
        std::vector<soci::indicator> indicators;
        auto bind = [&](std::string_view name, const std::optional<std::string>& value) {
          names.emplace_back(name);
          values.push_back(value.value_or(""));
          indicators.push_back(value ? soci::i_ok : soci::i_null);
        };
        if (caller) {
          bind("key", std::string(caller->key_id));
          bind("hash", std::string(caller->secret_hash));
          bind("now", std::to_string(caller->now));
          bind("user", std::string(caller->user_id));
          bind("org", std::string(caller->org_id));
        }
        for (const auto& [name, value] : params) bind(name, value);
        if (target == Target::kRead) bind("lag", std::to_string(max_replica_lag_seconds_));
        soci::row row;
        soci::statement st(s.session());
        st.alloc();
        for (size_t i = 0; i < values.size(); ++i) st.exchange(soci::use(values[i], indicators[i], names[i]));
        st.exchange(soci::into(row));
        st.prepare(std::string(sql));
        st.define_and_bind();
        std::vector<TextRow> rows;
        if (st.execute(true)) {
          do {
            TextRow out;
            for (size_t i = 0; i < row.size(); ++i) out.push_back(ColumnText(row, i));
            rows.push_back(std::move(out));
          } while (st.fetch());
        }
        if (rows.empty() || rows[0].size() < 2) throw std::runtime_error("a statement returned no row");
        s.fresh = rows[0][1] && *rows[0][1] == "1" ? 1 : 0;
        return rows;
      },
      target);
}

}  // namespace music_api
