// The FastCGI listening socket: inherited from systemd, or opened as the config says.
#include "server/listen_socket.hpp"

#include <arpa/inet.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace music_api {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

std::expected<ListenSocket, std::string> OpenUnix(const Config& config) {
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (config.listen.size() >= sizeof addr.sun_path) return std::unexpected("listen: socket path too long");
  std::strncpy(addr.sun_path, config.listen.c_str(), sizeof addr.sun_path - 1);
  // A socket left by a previous run is replaced; any other file is not touched.
  struct stat st {};
  if (lstat(config.listen.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) return std::unexpected("listen: " + config.listen + " exists and is not a socket");
    unlink(config.listen.c_str());
  }
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return std::unexpected(Errno("socket"));
  // Bind under a tight umask so the socket is never briefly wider open than listen_mode.
  mode_t old_umask = umask(0177);
  int rc = bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  umask(old_umask);
  if (rc != 0) {
    std::string error = Errno("bind " + config.listen);
    close(fd);
    return std::unexpected(error);
  }
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  if (!config.listen_owner.empty()) {
    passwd* pw = getpwnam(config.listen_owner.c_str());
    if (!pw) return close(fd), std::unexpected("listen_owner: no such user " + config.listen_owner);
    uid = pw->pw_uid;
  }
  if (!config.listen_group.empty()) {
    group* gr = getgrnam(config.listen_group.c_str());
    if (!gr) return close(fd), std::unexpected("listen_group: no such group " + config.listen_group);
    gid = gr->gr_gid;
  }
  if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) && chown(config.listen.c_str(), uid, gid) != 0) {
    std::string error = Errno("chown " + config.listen);
    return close(fd), std::unexpected(error);
  }
  if (chmod(config.listen.c_str(), config.listen_mode) != 0) {
    std::string error = Errno("chmod " + config.listen);
    return close(fd), std::unexpected(error);
  }
  if (listen(fd, config.listen_backlog) != 0) {
    std::string error = Errno("listen");
    return close(fd), std::unexpected(error);
  }
  return ListenSocket{fd, "unix:" + config.listen, false, config.listen};
}

std::expected<ListenSocket, std::string> OpenTcp(const Config& config) {
  size_t colon = config.listen.rfind(':');
  std::string host = config.listen.substr(0, colon), port = config.listen.substr(colon + 1);
  if (host.empty()) host = "127.0.0.1";
  addrinfo hints{}, *result = nullptr;
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
  if (int rc = getaddrinfo(host.c_str(), port.c_str(), &hints, &result); rc != 0) {
    return std::unexpected("listen: " + config.listen + ": " + gai_strerror(rc));
  }
  int fd = socket(result->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int rc = fd < 0 ? -1 : bind(fd, result->ai_addr, result->ai_addrlen);
  freeaddrinfo(result);
  if (rc != 0 || listen(fd, config.listen_backlog) != 0) {
    std::string error = Errno("bind " + config.listen);
    if (fd >= 0) close(fd);
    return std::unexpected(error);
  }
  return ListenSocket{fd, "tcp:" + config.listen, false, {}};
}

}  // namespace

std::expected<ListenSocket, std::string> OpenListenSocket(const Config& config) {
  // systemd socket activation first (LISTEN_FDS/LISTEN_PID), then a socket on stdin
  // (StandardInput=socket, spawn-fcgi), then what the config names.
  int passed = sd_listen_fds(1);
  if (passed > 1) return std::unexpected("systemd passed " + std::to_string(passed) + " sockets; expected one");
  if (passed == 1) return ListenSocket{SD_LISTEN_FDS_START, "systemd", true, {}};
  if (sd_is_socket(STDIN_FILENO, AF_UNSPEC, SOCK_STREAM, 1) > 0) return ListenSocket{STDIN_FILENO, "stdin", true, {}};
  if (config.listen.find('/') != std::string::npos) return OpenUnix(config);
  if (config.listen.find(':') != std::string::npos) return OpenTcp(config);
  return std::unexpected("listen: expected a socket path or HOST:PORT, got '" + config.listen + "'");
}

}  // namespace music_api
