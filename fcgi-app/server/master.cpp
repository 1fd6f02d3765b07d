// The master process: owns the socket, forks workers, replaces the dead, turns signals into actions.
#include "server/master.hpp"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <chrono>
#include <deque>
#include <map>
#include <stdexcept>

#include "core/log.hpp"
#include "core/media_keys.hpp"
#include "core/secrets.hpp"
#include "db/auth_listener.hpp"
#include "server/worker.hpp"

namespace music_api {
namespace {

using Clock = std::chrono::steady_clock;

constexpr auto kCrashWindow = std::chrono::seconds(10);
constexpr auto kMaxBackoff = std::chrono::seconds(30);
constexpr auto kStopTimeout = std::chrono::seconds(30);

class Master {
 public:
  Master(Config config, WorkerSecrets secrets, ListenSocket socket, MasterOptions options)
      : config_(std::move(config)),
        secrets_(std::move(secrets)),
        socket_(std::move(socket)),
        options_(std::move(options)) {}

  int Run();

 private:
  void Spawn();
  void SpawnListener();
  void Reap();
  void Reload();
  void BeginStop();
  void Notify(std::string_view state);
  int LiveWorkers() const;

  Config config_;
  WorkerSecrets secrets_;
  ListenSocket socket_;
  SharedStats* stats_ = nullptr;
  MasterOptions options_;
  // pid → generation; workers of an older generation are being retired after a reload.
  std::map<pid_t, int> workers_;
  int generation_ = 0;
  // The auth listener (auth_listener.hpp): one per host, on the primary; replaced a second after
  // it ends, and restarted on reload (its connection string may have changed).
  pid_t listener_ = 0;
  pid_t listener_retired_ = 0;  // the listener a reload ended (its exit is expected)
  Clock::time_point next_listener_ = Clock::now();
  std::deque<Clock::time_point> recent_crashes_;
  Clock::duration backoff_ = Clock::duration::zero();
  Clock::time_point next_spawn_ = Clock::now();
  bool stopping_ = false;
  Clock::time_point stop_deadline_;
  long restarts_ = 0;
};

int Master::LiveWorkers() const {
  int n = 0;
  for (const auto& [pid, generation] : workers_) n += generation == generation_ ? 1 : 0;
  return n;
}

void Master::Notify(std::string_view state) {
  std::string message(state);
  message += (message.empty() ? "" : "\n");
  message += "STATUS=" + std::to_string(LiveWorkers()) + " workers serving, " + std::to_string(restarts_) + " restarts";
  sd_notify(0, message.c_str());
}

void Master::Spawn() {
  const pid_t master = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    Log("error", "fork_failed", {{"errno", std::to_string(errno)}});
    return;
  }
  if (pid == 0) RunWorker(config_, secrets_, socket_.fd, *stats_, master);
  workers_[pid] = generation_;
}

void Master::SpawnListener() {
  const pid_t master = getpid();
  pid_t pid = fork();
  if (pid < 0) {
    Log("error", "fork_failed", {{"errno", std::to_string(errno)}});
    next_listener_ = Clock::now() + std::chrono::seconds(1);
    return;
  }
  if (pid == 0) {
    // The master's blocked signals are inherited: SIGTERM must end the listener (default action).
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    signal(SIGHUP, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_NAME, "music-api-auth");
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != master) _exit(0);
    close(socket_.fd);
    SharedStats* stats = stats_;
    RunAuthListener(config_.WriteDatabase(), DatabaseSettingsFor(config_).options,
                    [stats] { stats->auth_generation.fetch_add(1, std::memory_order_release); });
  }
  listener_ = pid;
}

void Master::Reap() {
  int status = 0;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    if (pid == listener_) {
      listener_ = 0;
      next_listener_ = Clock::now() + std::chrono::seconds(1);
      // Expected when the master ended it (a stop or a reload); a warning only when it died by itself.
      Log(stopping_ || pid == listener_retired_ ? "info" : "warn", "auth_listener_exited",
          {{"pid", std::to_string(pid)}});
      continue;
    }
    auto it = workers_.find(pid);
    if (it == workers_.end()) continue;
    bool current = it->second == generation_;
    workers_.erase(it);
    stats_->ReleaseSlot(pid);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    // A worker its own request alarm ended (a request stuck past its budget) is not a crash of the
    // pool: it is replaced at once and does not count toward the back-off.
    bool timed_out = WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM;
    std::string how = WIFSIGNALED(status) ? "signal " + std::to_string(WTERMSIG(status))
                                          : "status " + std::to_string(WEXITSTATUS(status));
    Log(clean ? "info" : "warn", "worker_exited", {{"pid", std::to_string(pid)}, {"how", how}});
    if (stopping_ || !current) continue;
    ++restarts_;
    stats_->restarts.fetch_add(1);
    if (!clean && !timed_out) {
      // Like PHP-FPM's emergency_restart_threshold: a worker pool dying in a loop backs off
      // (1 s, doubling to 30 s) instead of burning the CPU on fork after fork.
      auto now = Clock::now();
      recent_crashes_.push_back(now);
      while (!recent_crashes_.empty() && now - recent_crashes_.front() > kCrashWindow) recent_crashes_.pop_front();
      if (recent_crashes_.size() >= static_cast<size_t>(std::max(config_.EffectiveWorkers(), 3))) {
        backoff_ = backoff_ == Clock::duration::zero() ? std::chrono::seconds(1)
                                                       : std::min<Clock::duration>(backoff_ * 2, kMaxBackoff);
        next_spawn_ = now + backoff_;
        Log("error", "workers_crash_looping",
            {{"crashes", std::to_string(recent_crashes_.size())},
             {"backoff_ms", std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(backoff_).count())}});
      }
    } else if (clean) {
      backoff_ = Clock::duration::zero();
    }
  }
}

void Master::Reload() {
  sd_notify(0, "RELOADING=1");
  auto fresh = LoadConfig(options_.config_path, true, options_.overrides);
  std::string error;
  std::optional<std::string> pepper;
  if (fresh) pepper = ReadPepperFile(fresh->key_pepper_file, error);
  if (pepper) error = CheckConfigReferences(*fresh);
  std::optional<MediaKeyFile> media_keys;
  if (pepper && error.empty()) {
    auto read = ReadMediaKeyFile(fresh->media_keys_file);
    if (read) {
      media_keys = std::move(*read);
    } else {
      error = read.error();
    }
  }
  if (!fresh || !pepper || !error.empty()) {
    // A broken new configuration never replaces a working one.
    Log("error", "reload_rejected", {{"error", fresh ? error : fresh.error()}});
    Notify("READY=1");
    return;
  }
  // The socket is opened once and kept across reloads (so no connection is ever refused): every
  // setting that shapes it takes effect on restart only, and a change is said, never swallowed.
  std::string ignored;
  auto note = [&](bool changed, std::string_view key) {
    if (!changed) return;
    if (!ignored.empty()) ignored += ',';
    ignored += key;
  };
  note(fresh->listen != config_.listen, "listen");
  note(fresh->listen_mode != config_.listen_mode, "listen_mode");
  note(fresh->listen_owner != config_.listen_owner, "listen_owner");
  note(fresh->listen_group != config_.listen_group, "listen_group");
  note(fresh->listen_backlog != config_.listen_backlog, "listen_backlog");
  if (!ignored.empty()) {
    Log("warn", "reload_listen_ignored", {{"keys", ignored}, {"reason", "the socket changes on restart only"}});
  }
  config_ = std::move(*fresh);
  secrets_ = WorkerSecrets{std::move(*pepper), std::move(*media_keys)};
  // New workers first, then the old ones are asked to finish their request and exit: the socket
  // stays open in the master throughout, so no connection is refused during a reload.
  ++generation_;
  std::vector<pid_t> retiring;
  for (const auto& [pid, generation] : workers_) retiring.push_back(pid);
  for (int i = 0; i < config_.EffectiveWorkers(); ++i) Spawn();
  for (pid_t pid : retiring) kill(pid, SIGTERM);
  // The listener reads the new configuration when it is replaced (a second after it ends).
  if (listener_ > 0) {
    kill(listener_, SIGTERM);
    listener_retired_ = listener_;
  }
  next_listener_ = Clock::now();
  Log("info", "reloaded", {{"workers", std::to_string(config_.EffectiveWorkers())}});
  Notify("READY=1");
}

void Master::BeginStop() {
  if (stopping_) return;
  stopping_ = true;
  stop_deadline_ = Clock::now() + kStopTimeout;
  sd_notify(0, "STOPPING=1");
  Log("info", "stopping", {{"workers", std::to_string(workers_.size())}});
  for (const auto& [pid, generation] : workers_) kill(pid, SIGTERM);
  if (listener_ > 0) kill(listener_, SIGTERM);
}

int Master::Run() {
  stats_ = SharedStats::Create();
  if (!stats_) {
    Log("error", "stats_mmap_failed", {{"errno", std::to_string(errno)}});
    return 1;
  }
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGCHLD, SIGTERM, SIGINT, SIGQUIT, SIGHUP}) sigaddset(&signals, s);
  // Signals are read synchronously below (sigtimedwait): no work ever happens in a handler.
  sigprocmask(SIG_BLOCK, &signals, nullptr);

  Log("info", "master_started",
      {{"pid", std::to_string(getpid())},
       {"listen", socket_.description},
       {"workers", std::to_string(config_.EffectiveWorkers())}});
  for (int i = 0; i < config_.EffectiveWorkers(); ++i) Spawn();
  Notify("READY=1");

  uint64_t watchdog_usec = 0;
  bool watchdog = sd_watchdog_enabled(0, &watchdog_usec) > 0;
  while (true) {
    if (stopping_) {
      if (workers_.empty() && listener_ == 0) break;
      if (Clock::now() > stop_deadline_) {
        Log("warn", "stop_timeout", {{"killing", std::to_string(workers_.size())}});
        for (const auto& [pid, generation] : workers_) kill(pid, SIGKILL);
        if (listener_ > 0) kill(listener_, SIGKILL);
        stop_deadline_ = Clock::now() + std::chrono::hours(1);
      }
    } else {
      if (LiveWorkers() < config_.EffectiveWorkers() && Clock::now() >= next_spawn_) {
        while (LiveWorkers() < config_.EffectiveWorkers()) Spawn();
        Notify("");
      }
      if (listener_ == 0 && Clock::now() >= next_listener_) SpawnListener();
    }
    if (watchdog) sd_notify(0, "WATCHDOG=1");

    timespec wait{0, 200 * 1000 * 1000};
    siginfo_t info;
    int sig = sigtimedwait(&signals, &info, &wait);
    switch (sig) {
      case SIGCHLD:
        Reap();
        break;
      case SIGHUP:
        if (!stopping_) Reload();
        break;
      case SIGTERM:
      case SIGINT:
      case SIGQUIT:
        BeginStop();
        break;
      default:
        break;  // timeout: the loop re-checks respawns and deadlines
    }
  }
  close(socket_.fd);
  // The path bound at start, not what a reload may have written into config_.listen since.
  if (!socket_.bound_path.empty()) unlink(socket_.bound_path.c_str());
  Log("info", "master_stopped", {{"restarts", std::to_string(restarts_)}});
  return 0;
}

}  // namespace

std::string CheckConfigReferences(const Config& config) {
  try {
    HostList read(config.database, DatabaseSettingsFor(config).options);
    HostList write(config.WriteDatabase(), DatabaseSettingsFor(config).options);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  auto media_keys = ReadMediaKeyFile(config.media_keys_file);
  return media_keys ? std::string() : media_keys.error();
}

int RunMaster(Config config, WorkerSecrets secrets, ListenSocket socket, MasterOptions options) {
  return Master(std::move(config), std::move(secrets), std::move(socket), std::move(options)).Run();
}

}  // namespace music_api
