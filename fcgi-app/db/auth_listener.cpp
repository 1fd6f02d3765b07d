// The host's listener on the primary. libpq's asynchronous calls with a deadline throughout: a
// frozen primary must cost a reconnect, never a listener stuck in a blocking call.
#include "db/auth_listener.hpp"

#include <libpq-fe.h>
#include <poll.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <thread>

#include "core/log.hpp"
#include "db/statements.hpp"

namespace music_api {
namespace {

using Clock = std::chrono::steady_clock;
using Connection = std::unique_ptr<PGconn, decltype(&PQfinish)>;

constexpr auto kHeartbeatEvery = std::chrono::seconds(1);
constexpr auto kAnswerWithin = std::chrono::seconds(3);
constexpr auto kRetryEvery = std::chrono::seconds(1);

std::string ErrorOf(PGconn* conn) {
  std::string message = PQerrorMessage(conn);
  while (!message.empty() && (message.back() == '\n' || message.back() == ' ')) message.pop_back();
  return message.substr(0, 300);
}

// Waits until the socket is readable or `deadline`; false on timeout or a socket error.
bool WaitReadable(PGconn* conn, Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return false;
  pollfd fd{PQsocket(conn), POLLIN, 0};
  int ready = poll(&fd, 1, static_cast<int>(left));
  return ready > 0 || (ready < 0 && errno == EINTR);
}

// Runs `sql` and reads its result within kAnswerWithin; the error text, or "" on success, and
// the SQLSTATE of a failed statement in `sqlstate`.
std::string Exec(PGconn* conn, std::string_view sql, std::string* sqlstate = nullptr) {
  if (!PQsendQuery(conn, std::string(sql).c_str())) return ErrorOf(conn);
  const auto deadline = Clock::now() + kAnswerWithin;
  std::string error;
  for (;;) {
    if (PQconsumeInput(conn) == 0) return ErrorOf(conn);
    while (!PQisBusy(conn)) {
      PGresult* result = PQgetResult(conn);
      if (result == nullptr) return error;
      ExecStatusType status = PQresultStatus(result);
      if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK && error.empty()) {
        const char* state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
        if (sqlstate && state) *sqlstate = state;
        error = PQresultErrorMessage(result);
        while (!error.empty() && error.back() == '\n') error.pop_back();
      }
      PQclear(result);
    }
    if (!WaitReadable(conn, deadline)) return "no answer within 3 s";
  }
}

// Takes whatever notifications have arrived; true if there were any.
bool DrainNotifications(PGconn* conn) {
  bool any = false;
  while (PGnotify* notify = PQnotifies(conn)) {
    any = any || std::string_view(notify->relname) == sql::kAuthChannel;
    PQfreemem(notify);
  }
  return any;
}

// Serves one connection until it fails; the reason.
std::string Serve(PGconn* conn, const std::function<void()>& changed) {
  if (std::string error = Exec(conn, "SET application_name = 'music-api-auth'"); !error.empty()) return error;
  // The heartbeat measures the replicas' lag: it must never wait for them (synchronous replicas,
  // docs/scaling.md), or a slow replica would stop the very commits that show it is slow.
  if (std::string error = Exec(conn, "SET synchronous_commit = local"); !error.empty()) return error;
  if (std::string error = Exec(conn, sql::kListenAuthChanges); !error.empty()) return "LISTEN: " + error;
  changed();
  Log("info", "auth_listener_connected",
      {{"pid", std::to_string(getpid())}, {"host", PQhost(conn)}, {"port", PQport(conn)}});
  bool heartbeat_failing = false;
  for (auto next_beat = Clock::now();;) {
    if (Clock::now() >= next_beat) {
      std::string sqlstate;
      std::string error = Exec(conn, sql::kHeartbeat, &sqlstate);
      // A read-only server (25006) is no longer the primary: the cue to find the new one. A lost
      // connection too. Any other failure (e.g. 006_heartbeat.sql not applied yet) keeps the
      // LISTEN, which still works, and is said once, not every second.
      if (!error.empty() && (sqlstate == "25006" || PQstatus(conn) != CONNECTION_OK)) return "heartbeat: " + error;
      if (!error.empty() && !heartbeat_failing) {
        Log("warn", "heartbeat_failed", {{"pid", std::to_string(getpid())}, {"sqlstate", sqlstate}, {"error", error}});
      }
      heartbeat_failing = !error.empty();
      next_beat = Clock::now() + kHeartbeatEvery;
    }
    if (DrainNotifications(conn)) changed();
    WaitReadable(conn, next_beat);
    if (PQconsumeInput(conn) == 0) return ErrorOf(conn);
    if (DrainNotifications(conn)) changed();
  }
}

}  // namespace

void RunAuthListener(const std::string& conninfo, const ConnectionOptions& options,
                     const std::function<void()>& changed) {
  std::string target;
  try {
    target = HostList(conninfo, options, /*primary_only=*/true).StartingAt(0);
  } catch (const std::invalid_argument& e) {
    Log("error", "auth_listener_config", {{"error", e.what()}});
    std::_Exit(1);
  }
  for (;;) {
    Connection conn(PQconnectdb(target.c_str()), &PQfinish);
    if (PQstatus(conn.get()) != CONNECTION_OK) {
      Log("error", "auth_listener_connect_failed", {{"pid", std::to_string(getpid())}, {"error", ErrorOf(conn.get())}});
    } else {
      std::string reason = Serve(conn.get(), changed);
      Log("warn", "auth_listener_lost",
          {{"pid", std::to_string(getpid())}, {"host", PQhost(conn.get())}, {"error", reason}});
    }
    conn.reset();
    std::this_thread::sleep_for(kRetryEvery);
  }
}

}  // namespace music_api
