// The FastCGI ceiling for the benchmark: N prefork workers answering every request with the same
// headers and body (a file), no database. music-api is measured against this behind the same nginx.
#include <fcgiapp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: bench-canned-fcgi SOCKET WORKERS BODY_FILE\n");
    return 2;
  }
  std::ostringstream body;
  body << std::ifstream(argv[3]).rdbuf();
  std::string response =
      "Status: 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
      "Cache-Control: private, no-store\r\nX-Request-ID: req_canned0000000000000000\r\n"
      "Content-Length: " +
      std::to_string(body.str().size()) + "\r\n\r\n" + body.str();
  FCGX_Init();
  unlink(argv[1]);
  int fd = FCGX_OpenSocket(argv[1], 1024);
  if (fd < 0) return 1;
  chmod(argv[1], 0666);
  for (int i = 0; i < std::atoi(argv[2]); ++i) {
    if (fork() == 0) {
      prctl(PR_SET_PDEATHSIG, SIGTERM);  // stopping the responder stops its workers
      FCGX_Request request;
      FCGX_InitRequest(&request, fd, 0);
      while (FCGX_Accept_r(&request) >= 0) {
        FCGX_PutStr(response.data(), static_cast<int>(response.size()), request.out);
        FCGX_Finish_r(&request);
      }
      _exit(0);
    }
  }
  while (wait(nullptr) > 0) {
  }
  return 0;
}
