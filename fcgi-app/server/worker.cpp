// A worker process: its own database session, an accept loop, one request at a time.
#include "server/worker.hpp"

#include <fcgiapp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "core/log.hpp"
#include "core/secrets.hpp"
#include "http/response.hpp"
#include "pipeline.hpp"
#include "server/status_page.hpp"

namespace music_api {
namespace {

volatile sig_atomic_t g_stop = 0;

void OnStopSignal(int) {
  g_stop = 1;
  FCGX_ShutdownPending();
}

void InstallSignals() {
  struct sigaction action {};
  action.sa_handler = OnStopSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = 0;  // no SA_RESTART: a blocked accept() returns, so an idle worker stops at once
  sigaction(SIGTERM, &action, nullptr);
  sigaction(SIGINT, &action, nullptr);
  signal(SIGHUP, SIG_IGN);  // reloads are the master's business
  signal(SIGPIPE, SIG_IGN);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  // If the master dies, so do we: no orphaned workers holding database connections.
  prctl(PR_SET_PDEATHSIG, SIGTERM);
}

std::string_view Param(const FCGX_Request& request, const char* name) {
  const char* value = FCGX_GetParam(name, request.envp);
  return value ? std::string_view(value) : std::string_view();
}

}  // namespace

void RunWorker(const Config& config, const std::string& pepper, int listen_fd, SharedStats& stats) {
  InstallSignals();
  std::string pid = std::to_string(getpid());
  if (FCGX_Init() != 0) {
    Log("error", "worker_init_failed", {{"pid", pid}});
    std::_Exit(1);
  }
  FCGX_Request fcgi;
  FCGX_InitRequest(&fcgi, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR);

  // libpq connects after fork, here, never in the master.
  Database database(config.database, config.request_timeout_seconds * 1000);
  database.Connect("worker_start");
  AuthCache auth_cache;
  PipelineContext context{database, auth_cache, pepper, config.retry_after_seconds};
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
  long served = 0;
  while (!g_stop) {
    if (FCGX_Accept_r(&fcgi) < 0) {
      if (g_stop || errno == EINTR) continue;
      Log("error", "accept_failed", {{"pid", pid}, {"errno", std::to_string(errno)}});
      break;
    }
    auto started = std::chrono::steady_clock::now();
    set_state(WorkerState::kBusy);
    // Last resort if a request hangs outside the database (statement_timeout covers the database):
    // the default SIGALRM action ends the worker, and the master replaces it.
    alarm(static_cast<unsigned>(config.request_timeout_seconds * 2 + 1));
    Request request{Param(fcgi, "REQUEST_METHOD"),     Param(fcgi, "REQUEST_URI"),
                    Param(fcgi, "QUERY_STRING"),       Param(fcgi, "HTTP_X_API_KEY"),
                    Param(fcgi, "HTTP_AUTHORIZATION"), Param(fcgi, "MUSIC_API_INTERNAL")};
    std::string trace_id = NewTraceId();
    try {
      if (request.internal_endpoint.empty()) {
        Handle(request, trace_id, context, response);
      } else {
        HandleInternal(request, trace_id, stats, database, config.retry_after_seconds, response);
      }
    } catch (const std::exception& e) {
      Log("error", "unhandled_exception", {{"trace_id", trace_id}, {"error", e.what()}});
      SetError(response, ApiError::Of(ErrorCode::kInternalError), trace_id, config.retry_after_seconds);
    }
    // The request's params are freed by FCGX_Finish_r: keep what the log line needs.
    std::string method(request.method.substr(0, 16));
    std::string path(request.Path().substr(0, 256));
    head.clear();
    AppendCgiHeaders(response, trace_id, head);
    FCGX_PutStr(head.data(), static_cast<int>(head.size()), fcgi.out);
    if (method != "HEAD") FCGX_PutStr(response.body.data(), static_cast<int>(response.body.size()), fcgi.out);
    FCGX_Finish_r(&fcgi);
    alarm(0);

    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    stats.RecordRequest(response.status, ms);
    stats.database_errors.fetch_add(database.failures() - failures_reported, std::memory_order_relaxed);
    failures_reported = database.failures();
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
         {"duration_ms", duration},
         {"pid", pid}});
    if (config.max_requests > 0 && ++served >= config.max_requests) {
      Log("info", "worker_recycled", {{"pid", pid}, {"requests", std::to_string(served)}});
      break;
    }
  }
  std::exit(0);
}

}  // namespace music_api
