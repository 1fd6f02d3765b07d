// A worker process: its own database session, an accept loop, one request at a time.
#include "server/worker.hpp"

#include <fcgiapp.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <stdexcept>

#include "core/log.hpp"
#include "core/media_keys.hpp"
#include "core/secrets.hpp"
#include "http/json_body.hpp"
#include "http/response.hpp"
#include "pipeline/pipeline.hpp"

namespace music_api {
namespace {

volatile sig_atomic_t g_stop = 0;

void OnStopSignal(int) { g_stop = 1; }

// SIGTERM and SIGINT stay blocked except inside ppoll(): a stop signal that arrives while a request
// is served waits for the loop, and one that arrives just before the wait wakes it at once (no
// window between checking the flag and blocking, as there is with a plain blocking accept()).
sigset_t InstallSignals(pid_t master) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  sigprocmask(SIG_SETMASK, &stop_signals, nullptr);
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGHUP, SIG_IGN);  // reloads are the master's business
  signal(SIGPIPE, SIG_IGN);
  // If the master dies, so do we: no orphaned workers holding database connections. It may have
  // died before the request took effect, so look once.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != master) g_stop = 1;
  sigset_t during_wait;
  sigprocmask(SIG_SETMASK, nullptr, &during_wait);
  sigdelset(&during_wait, SIGTERM);
  sigdelset(&during_wait, SIGINT);
  return during_wait;
}

enum class Wait { kReadable, kStop, kFailed };

// Blocks until the listening socket has a connection or a stop signal arrives.
Wait WaitForConnection(int listen_fd, const sigset_t& during_wait) {
  for (;;) {
    if (g_stop) return Wait::kStop;
    pollfd fd{listen_fd, POLLIN, 0};
    int rc = ppoll(&fd, 1, nullptr, &during_wait);
    if (rc > 0) {
      // A connection that was already waiting makes ppoll() return at once, and the kernel then
      // restores our mask without running the handler: a stop signal may still be pending.
      sigset_t pending;
      sigpending(&pending);
      if (sigismember(&pending, SIGTERM) || sigismember(&pending, SIGINT)) return Wait::kStop;
      return (fd.revents & (POLLERR | POLLNVAL)) ? Wait::kFailed : Wait::kReadable;
    }
    if (rc < 0 && errno != EINTR) return Wait::kFailed;
  }
}

std::string_view Param(const FCGX_Request& request, const char* name) {
  const char* value = FCGX_GetParam(name, request.envp);
  return value ? std::string_view(value) : std::string_view();
}

// The path as the request log shows it: at most 256 bytes, and a share link's token (a credential
// anyone can open the link with) replaced by "shr_redacted". The share's own log line names its id.
std::string LoggedPath(std::string_view path) {
  constexpr std::string_view kShared = "/v1/music/shared/";
  std::string logged(path.substr(0, 256));
  if (path.starts_with(kShared)) {
    size_t end = logged.find('/', kShared.size());
    logged.replace(kShared.size(), end == std::string::npos ? std::string::npos : end - kShared.size(), "shr_redacted");
  }
  return logged;
}

// The request body, at most one byte past kMaxBodyBytes (enough to know it is too long; nginx
// refuses longer ones first). Read whatever CONTENT_LENGTH says: without a body the stream is at
// its end already, and a chunked body may come without a length.
std::string_view ReadBody(FCGX_Request& request, std::string& buffer) {
  int got = FCGX_GetStr(buffer.data(), static_cast<int>(buffer.size()), request.in);
  return std::string_view(buffer.data(), got > 0 ? static_cast<size_t>(got) : 0);
}

}  // namespace

DatabaseSettings DatabaseSettingsFor(const Config& config) {
  return DatabaseSettings{
      config.database,
      config.WriteDatabase(),
      ConnectionOptions{config.database_connect_timeout_seconds, config.database_keepalives_idle_seconds,
                        config.database_keepalives_interval_seconds, config.database_keepalives_count,
                        config.database_tcp_user_timeout_ms},
      config.request_timeout_seconds * 1000,
      config.max_replica_lag_seconds,
      config.max_collections_per_user,
      config.max_share_links_per_user};
}

void RunWorker(const Config& config, const WorkerSecrets& secrets, int listen_fd, SharedStats& stats, pid_t master) {
  const sigset_t during_wait = InstallSignals(master);
  // Non-blocking, so that a connection another worker took first sends us back to ppoll() rather
  // than into an accept() that a stop signal cannot interrupt. (Accepted sockets do not inherit
  // O_NONBLOCK on Linux.) The flag is on the shared file description; only workers accept on it.
  fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
  std::string pid = std::to_string(getpid());
  // libfcgi reads the accepted peers once, in FCGX_Init, and closes any other TCP peer at accept
  // (a unix socket is never checked). Set per worker, so a reload's new list takes effect.
  if (config.listen_allow.empty()) {
    unsetenv("FCGI_WEB_SERVER_ADDRS");
  } else {
    setenv("FCGI_WEB_SERVER_ADDRS", config.listen_allow.c_str(), 1);
  }
  if (FCGX_Init() != 0) {
    Log("error", "worker_init_failed", {{"pid", pid}});
    std::_Exit(1);
  }
  FCGX_Request fcgi;
  FCGX_InitRequest(&fcgi, listen_fd, 0);

  // libpq connects after fork, here, never in the master.
  std::unique_ptr<Database> database_holder;
  try {
    database_holder = std::make_unique<Database>(DatabaseSettingsFor(config));
  } catch (const std::invalid_argument& e) {
    Log("error", "database_config_invalid", {{"pid", pid}, {"error", e.what()}});
    std::exit(1);  // a crash: the master backs off
  }
  Database& database = *database_holder;
  const MediaKeyFile& media_keys = secrets.media_keys;
  const MediaSigner media_signer{media_keys.current, *media_keys.Secret(media_keys.current),
                                 config.media_url_ttl_seconds, config.media_base_url};
  database.Connect("worker_start");
  AuthCache auth_cache;
  PipelineContext context{
      database,
      auth_cache,
      secrets.pepper,
      config.retry_after_seconds,
      [&stats](bool prometheus, std::string& out) { out = prometheus ? stats.RenderPrometheus() : stats.RenderJson(); },
      &stats.auth_generation,
      0,
      &media_signer};
  const int slot = stats.ClaimSlot(getpid());
  auto set_state = [&](WorkerState state) {
    if (slot >= 0) stats.slots[slot].state.store(static_cast<int32_t>(state), std::memory_order_relaxed);
  };
  uint64_t failures_reported = 0;
  Log("info", "worker_started", {{"pid", pid}});

  Response response;
  response.body.reserve(64 * 1024);
  std::string head;
  head.reserve(512);
  // Sized once: a request's body is a view of its first bytes (no fill or allocation per request).
  std::string body_buffer(kMaxBodyBytes + 1, '\0');
  long served = 0;
  int exit_status = 0;
  for (;;) {
    Wait wait = WaitForConnection(listen_fd, during_wait);
    if (wait == Wait::kStop) break;
    bool accepted = wait == Wait::kReadable && FCGX_Accept_r(&fcgi) >= 0;
    if (!accepted) {
      bool taken = wait == Wait::kReadable && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
      if (taken) continue;  // another worker accepted that connection first
      // A persistent accept or poll error (EMFILE, ENFILE, ENOMEM…): exit non-zero, so the master's
      // crash-loop back-off applies instead of respawning us at once, again and again.
      Log("error", "accept_failed", {{"pid", pid}, {"errno", std::to_string(errno)}});
      exit_status = 1;
      break;
    }
    auto started = std::chrono::steady_clock::now();
    set_state(WorkerState::kBusy);
    // Last resort when a request outlives its whole budget (a frozen database server, which no
    // statement_timeout can cancel): the default SIGALRM action ends the worker, the master
    // replaces it without counting a crash, and nginx answers its JSON 503.
    alarm(static_cast<unsigned>(config.RequestAlarmSeconds()));
    database.StartRequest(started + std::chrono::seconds(config.request_timeout_seconds));
    const std::string_view body = ReadBody(fcgi, body_buffer);
    Request request{Param(fcgi, "REQUEST_METHOD"),     Param(fcgi, "REQUEST_URI"),
                    Param(fcgi, "QUERY_STRING"),       Param(fcgi, "HTTP_X_API_KEY"),
                    Param(fcgi, "HTTP_AUTHORIZATION"), Param(fcgi, "HTTP_IF_NONE_MATCH"),
                    Param(fcgi, "HTTP_HOST"),          Param(fcgi, "CONTENT_TYPE"),
                    Param(fcgi, "REMOTE_ADDR"),        body,
                    Param(fcgi, "MUSIC_API_INTERNAL"), std::nullopt};
    if (const char* key = FCGX_GetParam("HTTP_IDEMPOTENCY_KEY", fcgi.envp)) request.idempotency_key = key;
    std::string trace_id = NewTraceId();
    try {
      Handle(request, trace_id, context, response);
    } catch (const std::exception& e) {
      Log("error", "unhandled_exception", {{"trace_id", trace_id}, {"error", e.what()}});
      SetError(response, ApiError::Of(ErrorCode::kInternalError), trace_id, config.retry_after_seconds);
    }
    // The request's params are freed by FCGX_Finish_r: keep what the log line needs.
    std::string method(request.method.substr(0, 16));
    std::string path = LoggedPath(request.Path());
    head.clear();
    AppendCgiHeaders(response, trace_id, head);
    FCGX_PutStr(head.data(), static_cast<int>(head.size()), fcgi.out);
    if (method != "HEAD") FCGX_PutStr(response.body.data(), static_cast<int>(response.body.size()), fcgi.out);
    // Counted before the answer leaves (FCGX_Finish_r flushes it): a client that has its answer
    // finds it in the status page's counters, never a moment later.
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    stats.RecordRequest(response.handler, response.status, ms);
    database.DrainStatementTimes([&stats](double statement_ms) { stats.statements.Record(statement_ms); });
    stats.database_errors.fetch_add(database.failures() - failures_reported, std::memory_order_relaxed);
    failures_reported = database.failures();
    FCGX_Finish_r(&fcgi);
    alarm(0);
    set_state(WorkerState::kIdle);
    char duration[32];
    std::snprintf(duration, sizeof duration, "%.3f", ms);
    Log("info", "request",
        {{"trace_id", trace_id},
         {"method", method},
         {"path", path},
         {"status", std::to_string(response.status)},
         {"code", response.error ? Describe(*response.error).code : std::string_view("-")},
         {"rows", std::to_string(response.rows)},
         {"auth", response.auth},
         {"duration_ms", duration},
         {"pid", pid}});
    if (config.max_requests > 0 && ++served >= config.max_requests) {
      Log("info", "worker_recycled", {{"pid", pid}, {"requests", std::to_string(served)}});
      break;
    }
  }
  std::exit(exit_status);
}

}  // namespace music_api
